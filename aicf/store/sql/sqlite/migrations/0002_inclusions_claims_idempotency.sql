-- v2: proof inclusions, refused transactions, cancel requests, claims, idempotency keys, requester tiers.
CREATE TABLE proof_inclusions (
    task_id     BLOB PRIMARY KEY,  -- the first inclusion per task wins (SPEC §8)
    proof_id    BLOB    NOT NULL,
    provider_id BLOB    NOT NULL,
    height      INTEGER NOT NULL,
    tx_index    INTEGER NOT NULL,
    tx_hash     BLOB    NOT NULL,
    producer    BLOB    NOT NULL
) WITHOUT ROWID;
CREATE INDEX proof_inclusions_by_height ON proof_inclusions (height);

CREATE TABLE refused_txs (
    height   INTEGER NOT NULL,
    tx_index INTEGER NOT NULL,
    tx_hash  BLOB    NOT NULL,
    kind     TEXT    NOT NULL,
    sender   BLOB    NOT NULL,
    field    TEXT    NOT NULL,
    reason   TEXT    NOT NULL,
    PRIMARY KEY (height, tx_index)
) WITHOUT ROWID;

CREATE TABLE cancel_requests (
    height   INTEGER NOT NULL,
    tx_index INTEGER NOT NULL,
    tx_hash  BLOB    NOT NULL,
    task_id  BLOB    NOT NULL,
    sender   BLOB    NOT NULL,
    outcome  TEXT    NOT NULL,
    PRIMARY KEY (height, tx_index)
) WITHOUT ROWID;

CREATE TABLE claims (
    claim_id    BLOB PRIMARY KEY,
    provider_id BLOB    NOT NULL,
    amount      INTEGER NOT NULL,
    time        INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE idempotency_keys (
    key         BLOB PRIMARY KEY,
    fingerprint BLOB NOT NULL,
    result      BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE requester_tiers (
    caller BLOB PRIMARY KEY,
    tier   INTEGER NOT NULL
) WITHOUT ROWID;
