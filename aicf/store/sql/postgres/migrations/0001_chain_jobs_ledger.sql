-- v1: the ingested chain, jobs with their transitions, and the double-entry ledger.
-- Money, heights and times are BIGINT; nothing is REAL or NUMERIC.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

CREATE TABLE blocks (
    height   BIGINT PRIMARY KEY,
    hash     BYTEA   NOT NULL UNIQUE,
    parent   BYTEA   NOT NULL,
    time     BIGINT  NOT NULL,
    producer BYTEA   NOT NULL,
    beacon   BYTEA   NOT NULL,
    issuance BIGINT  NOT NULL,
    fees     BIGINT  NOT NULL,
    epoch    BIGINT  NOT NULL,
    final    BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE jobs (
    task_id          BYTEA PRIMARY KEY,
    chain_id         BIGINT  NOT NULL,
    tx_hash          BYTEA   NOT NULL,
    caller           BYTEA   NOT NULL,
    kind             TEXT    NOT NULL,
    payload          BYTEA   NOT NULL,
    payload_hash     BYTEA   NOT NULL,
    model            TEXT    NOT NULL,
    fee_per_unit     BIGINT  NOT NULL,
    tier             INTEGER NOT NULL,
    max_units_mu     BIGINT  NOT NULL,
    escrow           BIGINT  NOT NULL,
    depth            INTEGER NOT NULL,
    deadline_height  BIGINT  NOT NULL,
    regions          BYTEA   NOT NULL,  -- canonical CBOR list of text
    allowlist        BYTEA   NOT NULL,  -- canonical CBOR list of 32-byte provider ids
    tee_required     BOOLEAN NOT NULL,
    enqueue_height   BIGINT  NOT NULL,
    enqueue_tx_index INTEGER NOT NULL,
    status           TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    not_before       BIGINT  NOT NULL DEFAULT 0,
    carried_batches  INTEGER NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE
);
-- also serves rollbacks: every job enqueued above the fork point is PENDING (finality comes first)
CREATE INDEX jobs_by_status ON jobs (status, enqueue_height, enqueue_tx_index);
CREATE INDEX jobs_by_caller ON jobs (caller, status);
CREATE INDEX jobs_by_deadline ON jobs (deadline_height);

CREATE TABLE job_transitions (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id     BYTEA  NOT NULL,
    from_status TEXT,
    to_status   TEXT   NOT NULL,
    reason      TEXT   NOT NULL,
    height      BIGINT,
    time        BIGINT NOT NULL
);
CREATE INDEX job_transitions_by_task ON job_transitions (task_id, seq);

CREATE TABLE ledger_entries (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    debit        TEXT   NOT NULL,
    credit       TEXT   NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount > 0),
    ref_kind     TEXT   NOT NULL,
    ref          BYTEA  NOT NULL,
    block_height BIGINT,
    time         BIGINT NOT NULL
);
CREATE INDEX ledger_entries_by_height ON ledger_entries (block_height);

-- Derived from ledger_entries and kept in step in the same transaction; `aicf db verify` recomputes it.
CREATE TABLE balances (
    account TEXT PRIMARY KEY,
    amount  BIGINT NOT NULL,
    CONSTRAINT balance_not_negative CHECK (amount >= 0 OR account = 'external')
);
