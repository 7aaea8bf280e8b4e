-- 0004: AI traps and trap seeds (SPEC §8). Off-chain rows written by the coordinator, never rolled back: the
-- per-epoch commitment H("aicf/trapseed/v1", s_E) and its reveal, and the trap jobs' fresh callers.
CREATE TABLE trap_seeds (
    epoch            BIGINT PRIMARY KEY,
    commitment       BYTEA    NOT NULL,
    committed_at     BIGINT NOT NULL,
    committed_height BIGINT NOT NULL,
    seed             BYTEA    NOT NULL,  -- empty until revealed
    revealed_at      BIGINT
);

CREATE TABLE traps (
    caller        BYTEA PRIMARY KEY,
    n             BIGINT NOT NULL UNIQUE,
    epoch         BIGINT NOT NULL,
    model         TEXT    NOT NULL,
    prompt        BYTEA    NOT NULL,
    max_tokens    BIGINT NOT NULL,
    funded        BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    task_id       BYTEA    NOT NULL,  -- empty until the enqueue is ingested
    log_hash      BYTEA    NOT NULL,
    answer_digest BYTEA    NOT NULL,
    revealed_at   BIGINT
);
CREATE INDEX traps_open ON traps (n) WHERE revealed_at IS NULL;
