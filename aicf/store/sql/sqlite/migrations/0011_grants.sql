-- 0011: grants (issue 14 item 2). Off-chain rows written by the coordinator, never rolled back: a requester's
-- AI job the fund sponsors from a fresh caller, enqueued like a trap (the allowance is on chain, op `grant`).
CREATE TABLE grants (
    caller       BLOB PRIMARY KEY,
    m            INTEGER NOT NULL UNIQUE,
    epoch        INTEGER NOT NULL,
    requester    BLOB NOT NULL,
    request_hash BLOB NOT NULL UNIQUE,
    model        TEXT NOT NULL,
    body         BLOB NOT NULL,
    funded       INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    sent_at      INTEGER,
    task_id      BLOB NOT NULL,  -- empty until the enqueue is ingested
    reclaimed    INTEGER NOT NULL,
    closed_at    INTEGER
);
CREATE INDEX grants_open ON grants (m) WHERE closed_at IS NULL;
CREATE INDEX grants_requester ON grants (requester);
