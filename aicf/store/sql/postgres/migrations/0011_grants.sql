-- 0011: grants (issue 14 item 2). Off-chain rows written by the coordinator, never rolled back: a requester's
-- AI job the fund sponsors from a fresh caller, enqueued like a trap (the allowance is on chain, op `grant`).
CREATE TABLE grants (
    caller       BYTEA PRIMARY KEY,
    m            BIGINT NOT NULL UNIQUE,
    epoch        BIGINT NOT NULL,
    requester    BYTEA NOT NULL,
    request_hash BYTEA NOT NULL UNIQUE,
    model        TEXT NOT NULL,
    body         BYTEA NOT NULL,
    funded       BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    sent_at      BIGINT,
    task_id      BYTEA NOT NULL,  -- empty until the enqueue is ingested
    reclaimed    BIGINT NOT NULL,
    closed_at    BIGINT
);
CREATE INDEX grants_open ON grants (m) WHERE closed_at IS NULL;
CREATE INDEX grants_requester ON grants (requester);
