-- 0006: vendor roots and attestation policy in the registry (SPEC §8, docs/ROOTS.md). Off-chain rows written by
-- operator commands, never rolled back. Every change is also a row of trust_transitions; its highest seq is the
-- version the verifier's cache compares, so a change made by any replica is seen at the next proof.
CREATE TABLE vendor_roots (
    vendor            TEXT   NOT NULL,
    name              TEXT   NOT NULL,
    version           BIGINT NOT NULL CHECK (version >= 1),
    der               BYTEA  NOT NULL,
    sha256            BYTEA  NOT NULL,
    activation_height BIGINT NOT NULL CHECK (activation_height >= 0),
    expiry_height     BIGINT CHECK (expiry_height IS NULL OR expiry_height > activation_height),
    added_height      BIGINT NOT NULL,
    added_at          BIGINT NOT NULL,
    PRIMARY KEY (vendor, name, version)
);

-- policy: the canonical CBOR of the policy map (allow_debug, allowed_measurements, accepted_tcb_statuses,
-- min_snp_tcb, max_vmpl; docs/ROOTS.md)
CREATE TABLE attestation_policies (
    kind              TEXT   NOT NULL,
    version           BIGINT NOT NULL CHECK (version >= 1),
    activation_height BIGINT NOT NULL CHECK (activation_height >= 0),
    policy            BYTEA  NOT NULL,
    added_height      BIGINT NOT NULL,
    added_at          BIGINT NOT NULL,
    PRIMARY KEY (kind, version)
);

CREATE TABLE trust_transitions (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    what    TEXT   NOT NULL,  -- root | policy
    action  TEXT   NOT NULL,  -- add | retire | set
    subject TEXT   NOT NULL,
    detail  TEXT   NOT NULL,
    height  BIGINT NOT NULL,
    time    BIGINT NOT NULL
);
