-- 0006: vendor roots and attestation policy in the registry (SPEC §8, docs/ROOTS.md). Off-chain rows written by
-- operator commands, never rolled back. Every change is also a row of trust_transitions; its highest seq is the
-- version the verifier's cache compares, so a change made by any replica is seen at the next proof.
CREATE TABLE vendor_roots (
    vendor            TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    version           INTEGER NOT NULL CHECK (version >= 1),
    der               BLOB    NOT NULL,
    sha256            BLOB    NOT NULL,
    activation_height INTEGER NOT NULL CHECK (activation_height >= 0),
    expiry_height     INTEGER CHECK (expiry_height IS NULL OR expiry_height > activation_height),
    added_height      INTEGER NOT NULL,
    added_at          INTEGER NOT NULL,
    PRIMARY KEY (vendor, name, version)
);

-- policy: the canonical CBOR of the policy map (allow_debug, allowed_measurements, accepted_tcb_statuses,
-- min_snp_tcb, max_vmpl; docs/ROOTS.md)
CREATE TABLE attestation_policies (
    kind              TEXT    NOT NULL,
    version           INTEGER NOT NULL CHECK (version >= 1),
    activation_height INTEGER NOT NULL CHECK (activation_height >= 0),
    policy            BLOB    NOT NULL,
    added_height      INTEGER NOT NULL,
    added_at          INTEGER NOT NULL,
    PRIMARY KEY (kind, version)
);

CREATE TABLE trust_transitions (
    seq     INTEGER PRIMARY KEY,
    what    TEXT    NOT NULL,  -- root | policy
    action  TEXT    NOT NULL,  -- add | retire | set
    subject TEXT    NOT NULL,
    detail  TEXT    NOT NULL,
    height  INTEGER NOT NULL,
    time    INTEGER NOT NULL
);
