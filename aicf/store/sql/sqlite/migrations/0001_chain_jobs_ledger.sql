-- v1: the ingested chain, jobs with their transitions, and the double-entry ledger.
-- Money, heights and times are INTEGER (SQLite's 64-bit integer); nothing is REAL.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

CREATE TABLE blocks (
    height   INTEGER PRIMARY KEY,
    hash     BLOB    NOT NULL UNIQUE,
    parent   BLOB    NOT NULL,
    time     INTEGER NOT NULL,
    producer BLOB    NOT NULL,
    beacon   BLOB    NOT NULL,
    issuance INTEGER NOT NULL,
    fees     INTEGER NOT NULL,
    epoch    INTEGER NOT NULL,
    final    INTEGER NOT NULL DEFAULT 0
);

-- A rowid table: rows (a few hundred bytes) are appended in enqueue order, only the narrow task_id index takes
-- the random keys; keyed on task_id itself, every insert would dirty a random wide leaf page.
CREATE TABLE jobs (
    task_id          BLOB    NOT NULL UNIQUE,
    chain_id         INTEGER NOT NULL,
    tx_hash          BLOB    NOT NULL,
    caller           BLOB    NOT NULL,
    kind             TEXT    NOT NULL,
    payload          BLOB    NOT NULL,
    payload_hash     BLOB    NOT NULL,
    model            TEXT    NOT NULL,
    fee_per_unit     INTEGER NOT NULL,
    tier             INTEGER NOT NULL,
    max_units_mu     INTEGER NOT NULL,
    escrow           INTEGER NOT NULL,
    depth            INTEGER NOT NULL,
    deadline_height  INTEGER NOT NULL,
    regions          BLOB    NOT NULL,  -- canonical CBOR list of text
    allowlist        BLOB    NOT NULL,  -- canonical CBOR list of 32-byte provider ids
    tee_required     INTEGER NOT NULL,
    enqueue_height   INTEGER NOT NULL,
    enqueue_tx_index INTEGER NOT NULL,
    status           TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    not_before       INTEGER NOT NULL DEFAULT 0,
    carried_batches  INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
-- also serves rollbacks: every job enqueued above the fork point is PENDING (finality comes first)
CREATE INDEX jobs_by_status ON jobs (status, enqueue_height, enqueue_tx_index);
CREATE INDEX jobs_by_caller ON jobs (caller, status);
CREATE INDEX jobs_by_deadline ON jobs (deadline_height);

CREATE TABLE job_transitions (
    seq         INTEGER PRIMARY KEY,
    task_id     BLOB    NOT NULL,
    from_status TEXT,
    to_status   TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    height      INTEGER,
    time        INTEGER NOT NULL
);
CREATE INDEX job_transitions_by_task ON job_transitions (task_id, seq);

CREATE TABLE ledger_entries (
    seq          INTEGER PRIMARY KEY,
    debit        TEXT    NOT NULL,
    credit       TEXT    NOT NULL,
    amount       INTEGER NOT NULL CHECK (amount > 0),
    ref_kind     TEXT    NOT NULL,
    ref          BLOB    NOT NULL,
    block_height INTEGER,
    time         INTEGER NOT NULL
);
CREATE INDEX ledger_entries_by_height ON ledger_entries (block_height);

-- Derived from ledger_entries and kept in step in the same transaction; `aicf db verify` recomputes it.
CREATE TABLE balances (
    account TEXT PRIMARY KEY,
    amount  INTEGER NOT NULL,
    CHECK (amount >= 0 OR account = 'external')
) WITHOUT ROWID;
