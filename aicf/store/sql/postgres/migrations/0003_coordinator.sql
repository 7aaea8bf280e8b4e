-- v3: the coordinator's tables (issue 5): providers and their transitions, heartbeats, assignment decisions,
-- leases, proofs, results, settlement batches and payouts, slashes, events, RPC nonces; and the matcher's
-- priority key on jobs. Tuple fields (kinds, models, …) and QoS maps are canonical CBOR, like jobs.regions.
CREATE TABLE providers (
    provider_id       BYTEA PRIMARY KEY,
    public_key        BYTEA    NOT NULL,
    status            TEXT    NOT NULL,
    registered_at     BIGINT NOT NULL,
    kinds             BYTEA    NOT NULL,  -- canonical CBOR list of text
    models            BYTEA    NOT NULL,
    devices           BYTEA    NOT NULL,
    regions           BYTEA    NOT NULL,
    tee_classes       BYTEA    NOT NULL,
    max_leases        BIGINT NOT NULL,
    bonded            BIGINT NOT NULL,
    unbonding         BIGINT NOT NULL,
    unbonding_until   BIGINT NOT NULL,
    jailed_until      BIGINT,           -- NULL: not jailed; 0: permanently
    last_heartbeat_at BIGINT,
    bucket_tokens_mu  BIGINT NOT NULL,
    bucket_at         BIGINT NOT NULL,
    strikes           BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE provider_transitions (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider_id BYTEA    NOT NULL,
    from_status TEXT,                    -- NULL: registration
    to_status   TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    time        BIGINT NOT NULL
);
CREATE INDEX provider_transitions_by_provider ON provider_transitions (provider_id, seq);

CREATE TABLE heartbeats (
    provider_id BYTEA    NOT NULL,
    slot        BIGINT NOT NULL,
    PRIMARY KEY (provider_id, slot)
);

CREATE TABLE decisions (
    task_id  BYTEA    NOT NULL,
    attempt  BIGINT NOT NULL,
    decision BYTEA    NOT NULL,  -- canonical CBOR of AssignmentDecision.to_map()
    winner   BYTEA,
    time     BIGINT NOT NULL,
    PRIMARY KEY (task_id, attempt)
);

CREATE TABLE leases (
    lease_id    BYTEA PRIMARY KEY,
    task_id     BYTEA    NOT NULL,
    provider_id BYTEA    NOT NULL,
    attempt     BIGINT NOT NULL,
    granted_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    status      TEXT    NOT NULL,
    epoch       BIGINT NOT NULL,
    ended_at    BIGINT,
    grant_sig   BYTEA    NOT NULL
);
CREATE INDEX leases_by_provider ON leases (provider_id, status);
CREATE INDEX leases_by_expiry ON leases (status, expires_at);
CREATE INDEX leases_by_task ON leases (task_id);

CREATE TABLE proofs (
    proof_id       BYTEA PRIMARY KEY,
    task_id        BYTEA    NOT NULL,
    lease_id       BYTEA    NOT NULL,
    provider_id    BYTEA    NOT NULL,
    kind           TEXT    NOT NULL,
    envelope       BYTEA    NOT NULL,
    received_at    BIGINT NOT NULL,
    latency_ms     BIGINT NOT NULL,
    verdict        TEXT    NOT NULL,
    message        TEXT    NOT NULL,
    acceptance     BYTEA    NOT NULL,
    acceptance_sig BYTEA    NOT NULL,
    units_mu       BIGINT NOT NULL,
    output_digest  BYTEA    NOT NULL,
    qos            BYTEA    NOT NULL  -- canonical CBOR map text -> int
);
CREATE INDEX proofs_by_provider ON proofs (provider_id, verdict, received_at);
CREATE INDEX proofs_by_task ON proofs (task_id, verdict);

-- Chain-derived: written at the proof's inclusion height, deleted by rollback_above.
CREATE TABLE results (
    task_id       BYTEA PRIMARY KEY,
    proof_id      BYTEA    NOT NULL,
    kind          TEXT    NOT NULL,
    output_digest BYTEA    NOT NULL,
    units_mu      BIGINT NOT NULL,
    qos           BYTEA    NOT NULL,
    block_height  BIGINT NOT NULL,
    tx_index      BIGINT NOT NULL,
    miner_id      BYTEA    NOT NULL,
    provider_id   BYTEA    NOT NULL
);
CREATE INDEX results_by_height ON results (block_height, tx_index);

CREATE TABLE batches (
    epoch            BIGINT PRIMARY KEY,
    finalized_height BIGINT NOT NULL,
    params_hash      BYTEA    NOT NULL,
    price_bps        BIGINT NOT NULL,
    next_price_bps   BIGINT NOT NULL,
    root             BYTEA    NOT NULL,
    batch            BYTEA    NOT NULL,  -- canonical CBOR of the batch map
    payouts          BIGINT NOT NULL,
    carried          BIGINT NOT NULL,
    reward           BIGINT NOT NULL,
    units_mu         BIGINT NOT NULL,
    treasury_before  BIGINT NOT NULL,
    trap_seed        BYTEA    NOT NULL,
    time             BIGINT NOT NULL
);

CREATE TABLE payouts (
    epoch       BIGINT NOT NULL,
    position    BIGINT NOT NULL,  -- admission order within the batch
    payout_id   BYTEA    NOT NULL UNIQUE,
    task_id     BYTEA    NOT NULL UNIQUE,  -- a task is paid at most once, across all batches
    provider_id BYTEA    NOT NULL,
    miner_id    BYTEA    NOT NULL,
    proof_id    BYTEA    NOT NULL,
    units_mu    BIGINT NOT NULL,
    base_rate   BIGINT NOT NULL,
    price_bps   BIGINT NOT NULL,
    reward      BIGINT NOT NULL,
    provider    BIGINT NOT NULL,
    miner       BIGINT NOT NULL,
    fund        BIGINT NOT NULL,
    charged     BIGINT NOT NULL,
    params_hash BYTEA    NOT NULL,
    PRIMARY KEY (epoch, position)
);

CREATE TABLE slashes (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- the order stored (ties of time)
    evidence_hash BYTEA    NOT NULL,
    provider_id   BYTEA    NOT NULL,
    reason        TEXT    NOT NULL,
    subject       BYTEA    NOT NULL UNIQUE,  -- at most one slash per lease or proof
    task_id       BYTEA    NOT NULL,
    amount        BIGINT NOT NULL,
    evidence      BYTEA    NOT NULL,
    time          BIGINT NOT NULL,
    jailed_until  BIGINT
);
CREATE INDEX slashes_by_provider ON slashes (provider_id, time, seq);
CREATE INDEX slashes_by_time ON slashes (time, seq);

-- Gapless: seq comes from the one-row event_counter, bumped in the transaction that appends the event; its row
-- lock makes concurrent appenders queue, and a rollback gives the number back.
CREATE TABLE events (
    seq   BIGINT PRIMARY KEY,
    topic TEXT    NOT NULL,
    data  BYTEA    NOT NULL,
    time  BIGINT NOT NULL
);
CREATE INDEX events_by_topic ON events (topic, seq);

CREATE TABLE event_counter (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    last BIGINT NOT NULL
);
INSERT INTO event_counter (id, last) VALUES (1, 0);

CREATE TABLE rpc_nonces (
    provider_id BYTEA    NOT NULL,
    nonce       BYTEA    NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (provider_id, nonce)
);

-- The matcher's order within a tier (SPEC §5 less the head, the same for every job of a pass). bigint `/`
-- truncates, which is floor division for the non-negative max_units_mu (as in SQLite).
ALTER TABLE jobs ADD COLUMN priority_key BIGINT
    GENERATED ALWAYS AS (fee_per_unit - max_units_mu / 1000 - 10 * enqueue_height) STORED;
CREATE INDEX jobs_ready ON jobs (tier DESC, priority_key DESC, enqueue_height, task_id) WHERE status = 'QUEUED';

-- rollback_above reverts the chain-recorded moves above the fork point (SPEC §4, §10)
CREATE INDEX job_transitions_by_height ON job_transitions (height) WHERE height IS NOT NULL;
