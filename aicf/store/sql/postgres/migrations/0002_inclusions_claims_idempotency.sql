-- v2: proof inclusions, refused transactions, cancel requests, claims, idempotency keys, requester tiers.
CREATE TABLE proof_inclusions (
    task_id     BYTEA PRIMARY KEY,  -- the first inclusion per task wins (SPEC §8)
    proof_id    BYTEA    NOT NULL,
    provider_id BYTEA    NOT NULL,
    height      BIGINT NOT NULL,
    tx_index    BIGINT NOT NULL,
    tx_hash     BYTEA    NOT NULL,
    producer    BYTEA    NOT NULL
);
CREATE INDEX proof_inclusions_by_height ON proof_inclusions (height);

CREATE TABLE refused_txs (
    height   BIGINT NOT NULL,
    tx_index BIGINT NOT NULL,
    tx_hash  BYTEA    NOT NULL,
    kind     TEXT    NOT NULL,
    sender   BYTEA    NOT NULL,
    field    TEXT    NOT NULL,
    reason   TEXT    NOT NULL,
    PRIMARY KEY (height, tx_index)
);

CREATE TABLE cancel_requests (
    height   BIGINT NOT NULL,
    tx_index BIGINT NOT NULL,
    tx_hash  BYTEA    NOT NULL,
    task_id  BYTEA    NOT NULL,
    sender   BYTEA    NOT NULL,
    outcome  TEXT    NOT NULL,
    PRIMARY KEY (height, tx_index)
);

CREATE TABLE claims (
    claim_id    BYTEA PRIMARY KEY,
    provider_id BYTEA    NOT NULL,
    amount      BIGINT NOT NULL,
    time        BIGINT NOT NULL
);

CREATE TABLE idempotency_keys (
    key         BYTEA PRIMARY KEY,
    fingerprint BYTEA NOT NULL,
    result      BYTEA NOT NULL
);

CREATE TABLE requester_tiers (
    caller BYTEA PRIMARY KEY,
    tier   BIGINT NOT NULL
);
