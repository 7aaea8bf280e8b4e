-- 0004: AI traps and trap seeds (SPEC §8). Off-chain rows written by the coordinator, never rolled back: the
-- per-epoch commitment H("aicf/trapseed/v1", s_E) and its reveal, and the trap jobs' fresh callers.
CREATE TABLE trap_seeds (
    epoch            INTEGER PRIMARY KEY,
    commitment       BLOB    NOT NULL,
    committed_at     INTEGER NOT NULL,
    committed_height INTEGER NOT NULL,
    seed             BLOB    NOT NULL,  -- empty until revealed
    revealed_at      INTEGER
);

CREATE TABLE traps (
    caller        BLOB PRIMARY KEY,
    n             INTEGER NOT NULL UNIQUE,
    epoch         INTEGER NOT NULL,
    model         TEXT    NOT NULL,
    prompt        BLOB    NOT NULL,
    max_tokens    INTEGER NOT NULL,
    funded        INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    task_id       BLOB    NOT NULL,  -- empty until the enqueue is ingested
    log_hash      BLOB    NOT NULL,
    answer_digest BLOB    NOT NULL,
    revealed_at   INTEGER
);
CREATE INDEX traps_open ON traps (n) WHERE revealed_at IS NULL;
