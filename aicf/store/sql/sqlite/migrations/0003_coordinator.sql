-- v3: the coordinator's tables (issue 5): providers and their transitions, heartbeats, assignment decisions,
-- leases, proofs, results, settlement batches and payouts, slashes, events, RPC nonces; and the matcher's
-- priority key on jobs. Tuple fields (kinds, models, …) and QoS maps are canonical CBOR, like jobs.regions.
CREATE TABLE providers (
    provider_id       BLOB PRIMARY KEY,
    public_key        BLOB    NOT NULL,
    status            TEXT    NOT NULL,
    registered_at     INTEGER NOT NULL,
    kinds             BLOB    NOT NULL,  -- canonical CBOR list of text
    models            BLOB    NOT NULL,
    devices           BLOB    NOT NULL,
    regions           BLOB    NOT NULL,
    tee_classes       BLOB    NOT NULL,
    max_leases        INTEGER NOT NULL,
    bonded            INTEGER NOT NULL,
    unbonding         INTEGER NOT NULL,
    unbonding_until   INTEGER NOT NULL,
    jailed_until      INTEGER,           -- NULL: not jailed; 0: permanently
    last_heartbeat_at INTEGER,
    bucket_tokens_mu  INTEGER NOT NULL,
    bucket_at         INTEGER NOT NULL,
    strikes           INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE provider_transitions (
    seq         INTEGER PRIMARY KEY,
    provider_id BLOB    NOT NULL,
    from_status TEXT,                    -- NULL: registration
    to_status   TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    time        INTEGER NOT NULL
);
CREATE INDEX provider_transitions_by_provider ON provider_transitions (provider_id, seq);

CREATE TABLE heartbeats (
    provider_id BLOB    NOT NULL,
    slot        INTEGER NOT NULL,
    PRIMARY KEY (provider_id, slot)
) WITHOUT ROWID;

CREATE TABLE decisions (
    task_id  BLOB    NOT NULL,
    attempt  INTEGER NOT NULL,
    decision BLOB    NOT NULL,  -- canonical CBOR of AssignmentDecision.to_map()
    winner   BLOB,
    time     INTEGER NOT NULL,
    PRIMARY KEY (task_id, attempt)
) WITHOUT ROWID;

CREATE TABLE leases (
    lease_id    BLOB PRIMARY KEY,
    task_id     BLOB    NOT NULL,
    provider_id BLOB    NOT NULL,
    attempt     INTEGER NOT NULL,
    granted_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    epoch       INTEGER NOT NULL,
    ended_at    INTEGER,
    grant_sig   BLOB    NOT NULL
) WITHOUT ROWID;
CREATE INDEX leases_by_provider ON leases (provider_id, status);
CREATE INDEX leases_by_expiry ON leases (status, expires_at);
CREATE INDEX leases_by_task ON leases (task_id);

CREATE TABLE proofs (
    proof_id       BLOB PRIMARY KEY,
    task_id        BLOB    NOT NULL,
    lease_id       BLOB    NOT NULL,
    provider_id    BLOB    NOT NULL,
    kind           TEXT    NOT NULL,
    envelope       BLOB    NOT NULL,
    received_at    INTEGER NOT NULL,
    latency_ms     INTEGER NOT NULL,
    verdict        TEXT    NOT NULL,
    message        TEXT    NOT NULL,
    acceptance     BLOB    NOT NULL,
    acceptance_sig BLOB    NOT NULL,
    units_mu       INTEGER NOT NULL,
    output_digest  BLOB    NOT NULL,
    qos            BLOB    NOT NULL  -- canonical CBOR map text -> int
) WITHOUT ROWID;
CREATE INDEX proofs_by_provider ON proofs (provider_id, verdict, received_at);
CREATE INDEX proofs_by_task ON proofs (task_id, verdict);

-- Chain-derived: written at the proof's inclusion height, deleted by rollback_above.
CREATE TABLE results (
    task_id       BLOB PRIMARY KEY,
    proof_id      BLOB    NOT NULL,
    kind          TEXT    NOT NULL,
    output_digest BLOB    NOT NULL,
    units_mu      INTEGER NOT NULL,
    qos           BLOB    NOT NULL,
    block_height  INTEGER NOT NULL,
    tx_index      INTEGER NOT NULL,
    miner_id      BLOB    NOT NULL,
    provider_id   BLOB    NOT NULL
) WITHOUT ROWID;
CREATE INDEX results_by_height ON results (block_height, tx_index);

CREATE TABLE batches (
    epoch            INTEGER PRIMARY KEY,
    finalized_height INTEGER NOT NULL,
    params_hash      BLOB    NOT NULL,
    price_bps        INTEGER NOT NULL,
    next_price_bps   INTEGER NOT NULL,
    root             BLOB    NOT NULL,
    batch            BLOB    NOT NULL,  -- canonical CBOR of the batch map
    payouts          INTEGER NOT NULL,
    carried          INTEGER NOT NULL,
    reward           INTEGER NOT NULL,
    units_mu         INTEGER NOT NULL,
    treasury_before  INTEGER NOT NULL,
    trap_seed        BLOB    NOT NULL,
    time             INTEGER NOT NULL
);

CREATE TABLE payouts (
    epoch       INTEGER NOT NULL,
    position    INTEGER NOT NULL,  -- admission order within the batch
    payout_id   BLOB    NOT NULL UNIQUE,
    task_id     BLOB    NOT NULL UNIQUE,  -- a task is paid at most once, across all batches
    provider_id BLOB    NOT NULL,
    miner_id    BLOB    NOT NULL,
    proof_id    BLOB    NOT NULL,
    units_mu    INTEGER NOT NULL,
    base_rate   INTEGER NOT NULL,
    price_bps   INTEGER NOT NULL,
    reward      INTEGER NOT NULL,
    provider    INTEGER NOT NULL,
    miner       INTEGER NOT NULL,
    fund        INTEGER NOT NULL,
    charged     INTEGER NOT NULL,
    params_hash BLOB    NOT NULL,
    PRIMARY KEY (epoch, position)
) WITHOUT ROWID;

CREATE TABLE slashes (
    seq           INTEGER PRIMARY KEY,  -- the order stored (ties of time)
    evidence_hash BLOB    NOT NULL,
    provider_id   BLOB    NOT NULL,
    reason        TEXT    NOT NULL,
    subject       BLOB    NOT NULL UNIQUE,  -- at most one slash per lease or proof
    task_id       BLOB    NOT NULL,
    amount        INTEGER NOT NULL,
    evidence      BLOB    NOT NULL,
    time          INTEGER NOT NULL,
    jailed_until  INTEGER
);
CREATE INDEX slashes_by_provider ON slashes (provider_id, time, seq);
CREATE INDEX slashes_by_time ON slashes (time, seq);

-- Gapless: seq comes from the one-row event_counter, bumped in the transaction that appends the event.
CREATE TABLE events (
    seq   INTEGER PRIMARY KEY,
    topic TEXT    NOT NULL,
    data  BLOB    NOT NULL,
    time  INTEGER NOT NULL
);
CREATE INDEX events_by_topic ON events (topic, seq);

CREATE TABLE event_counter (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL
);
INSERT INTO event_counter (id, last) VALUES (1, 0);

CREATE TABLE rpc_nonces (
    provider_id BLOB    NOT NULL,
    nonce       BLOB    NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (provider_id, nonce)
) WITHOUT ROWID;

-- The matcher's order within a tier (SPEC §5 less the head, the same for every job of a pass). SQLite's `/`
-- on integers truncates, which is floor division for the non-negative max_units_mu.
ALTER TABLE jobs ADD COLUMN priority_key INTEGER
    GENERATED ALWAYS AS (fee_per_unit - max_units_mu / 1000 - 10 * enqueue_height) VIRTUAL;
CREATE INDEX jobs_ready ON jobs (tier DESC, priority_key DESC, enqueue_height, task_id) WHERE status = 'QUEUED';

-- rollback_above reverts the chain-recorded moves above the fork point (SPEC §4, §10)
CREATE INDEX job_transitions_by_height ON job_transitions (height) WHERE height IS NOT NULL;
