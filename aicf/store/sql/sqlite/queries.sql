-- Every query of the SQLite backend, each under a `-- name: <query>` header, bound by :name.
-- No query reads the clock: times come in as parameters.

-- name: get_meta
SELECT value FROM meta WHERE key = :key;

-- name: set_meta
INSERT INTO meta (key, value) VALUES (:key, :value)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: head_block
SELECT height, hash, parent, time, producer, beacon, issuance, fees, epoch, final
  FROM blocks ORDER BY height DESC LIMIT 1;

-- name: block_at
SELECT height, hash, parent, time, producer, beacon, issuance, fees, epoch, final
  FROM blocks WHERE height = :height;

-- name: insert_block
INSERT INTO blocks (height, hash, parent, time, producer, beacon, issuance, fees, epoch, final)
VALUES (:height, :hash, :parent, :time, :producer, :beacon, :issuance, :fees, :epoch, :final);

-- name: finalize_blocks_through
UPDATE blocks SET final = 1 WHERE height <= :height AND final = 0;

-- name: insert_job
INSERT INTO jobs (task_id, chain_id, tx_hash, caller, kind, payload, payload_hash, model, fee_per_unit, tier,
                  max_units_mu, escrow, depth, deadline_height, regions, allowlist, tee_required, enqueue_height,
                  enqueue_tx_index, status, attempts, not_before, carried_batches, cancel_requested)
VALUES (:task_id, :chain_id, :tx_hash, :caller, :kind, :payload, :payload_hash, :model, :fee_per_unit, :tier,
        :max_units_mu, :escrow, :depth, :deadline_height, :regions, :allowlist, :tee_required, :enqueue_height,
        :enqueue_tx_index, :status, :attempts, :not_before, :carried_batches, :cancel_requested);

-- name: insert_transition
INSERT INTO job_transitions (task_id, from_status, to_status, reason, height, time)
VALUES (:task_id, :from_status, :to_status, :reason, :height, :time);

-- name: get_job
SELECT task_id, chain_id, tx_hash, caller, kind, payload, payload_hash, model, fee_per_unit, tier, max_units_mu,
       escrow, depth, deadline_height, regions, allowlist, tee_required, enqueue_height, enqueue_tx_index, status,
       attempts, not_before, carried_batches, cancel_requested
  FROM jobs WHERE task_id = :task_id;

-- name: move_job
-- Guarded move: only a job still in :from_status moves; no row changed means another writer moved it first.
UPDATE jobs SET status = :to_status WHERE task_id = :task_id AND status = :from_status;

-- name: pending_jobs_through
SELECT task_id FROM jobs
 WHERE status = 'PENDING' AND enqueue_height <= :height
 ORDER BY enqueue_height, enqueue_tx_index, task_id;

-- name: queued_jobs_at_deadline
SELECT task_id, chain_id, tx_hash, caller, kind, payload, payload_hash, model, fee_per_unit, tier, max_units_mu,
       escrow, depth, deadline_height, regions, allowlist, tee_required, enqueue_height, enqueue_tx_index, status,
       attempts, not_before, carried_batches, cancel_requested
  FROM jobs
 WHERE deadline_height = :height AND status = 'QUEUED'
 ORDER BY enqueue_height, enqueue_tx_index, task_id;

-- name: open_job_count
SELECT count(*) FROM jobs
 WHERE caller = :caller AND status NOT IN ('SETTLED', 'REJECTED', 'FAILED', 'CANCELLED');

-- name: set_cancel_requested
UPDATE jobs SET cancel_requested = 1 WHERE task_id = :task_id;

-- name: transitions_of
SELECT seq, task_id, from_status, to_status, reason, height, time
  FROM job_transitions WHERE task_id = :task_id ORDER BY seq;

-- name: balance_of
SELECT amount FROM balances WHERE account = :account;

-- name: add_balance
INSERT INTO balances (account, amount) VALUES (:account, :delta)
ON CONFLICT (account) DO UPDATE SET amount = amount + excluded.amount;

-- name: sub_balance
UPDATE balances SET amount = amount + :delta WHERE account = :account;

-- name: insert_entry
INSERT INTO ledger_entries (debit, credit, amount, ref_kind, ref, block_height, time)
VALUES (:debit, :credit, :amount, :ref_kind, :ref, :block_height, :time);

-- name: entry_deltas_above
-- The net change per account of the entries above a height, to reverse them on a reorg.
SELECT account, sum(delta) FROM (
    SELECT credit AS account, amount AS delta FROM ledger_entries WHERE block_height > :height
    UNION ALL
    SELECT debit AS account, -amount AS delta FROM ledger_entries WHERE block_height > :height
) GROUP BY account;

-- name: delete_entries_above
DELETE FROM ledger_entries WHERE block_height > :height;

-- name: delete_transitions_above
-- Only PENDING jobs can sit above a fork point, and their transitions are their creation rows.
DELETE FROM job_transitions
 WHERE task_id IN (SELECT task_id FROM jobs WHERE status = 'PENDING' AND enqueue_height > :height);

-- name: delete_jobs_above
DELETE FROM jobs WHERE status = 'PENDING' AND enqueue_height > :height;

-- name: delete_blocks_above
DELETE FROM blocks WHERE height > :height;

-- name: delete_inclusions_above
DELETE FROM proof_inclusions WHERE height > :height;

-- name: delete_refused_above
DELETE FROM refused_txs WHERE height > :height;

-- name: delete_cancels_above
DELETE FROM cancel_requests WHERE height > :height;

-- name: insert_proof_inclusion
INSERT INTO proof_inclusions (task_id, proof_id, provider_id, height, tx_index, tx_hash, producer)
VALUES (:task_id, :proof_id, :provider_id, :height, :tx_index, :tx_hash, :producer)
ON CONFLICT (task_id) DO NOTHING;

-- name: proof_inclusion
SELECT task_id, proof_id, provider_id, height, tx_index, tx_hash, producer
  FROM proof_inclusions WHERE task_id = :task_id;

-- name: insert_refused
INSERT INTO refused_txs (height, tx_index, tx_hash, kind, sender, field, reason)
VALUES (:height, :tx_index, :tx_hash, :kind, :sender, :field, :reason);

-- name: insert_cancel
INSERT INTO cancel_requests (height, tx_index, tx_hash, task_id, sender, outcome)
VALUES (:height, :tx_index, :tx_hash, :task_id, :sender, :outcome);

-- name: waiting_cancels_through
SELECT height, tx_index, tx_hash, task_id, sender, outcome FROM cancel_requests
 WHERE height <= :height AND outcome = 'WAITING' ORDER BY height, tx_index;

-- name: set_cancel_outcome
UPDATE cancel_requests SET outcome = :outcome WHERE height = :height AND tx_index = :tx_index;

-- name: requester_tier
SELECT tier FROM requester_tiers WHERE caller = :caller;

-- name: set_requester_tier
INSERT INTO requester_tiers (caller, tier) VALUES (:caller, :tier)
ON CONFLICT (caller) DO UPDATE SET tier = excluded.tier;

-- name: insert_claim
INSERT INTO claims (claim_id, provider_id, amount, time) VALUES (:claim_id, :provider_id, :amount, :time)
ON CONFLICT (claim_id) DO NOTHING;

-- name: get_idempotency
SELECT fingerprint, result FROM idempotency_keys WHERE key = :key;

-- name: insert_idempotency
INSERT INTO idempotency_keys (key, fingerprint, result) VALUES (:key, :fingerprint, :result);

-- name: all_meta
SELECT key, value FROM meta ORDER BY key;

-- name: all_blocks
SELECT height, hash, parent, time, producer, beacon, issuance, fees, epoch, final FROM blocks ORDER BY height;

-- name: all_jobs
SELECT task_id, chain_id, tx_hash, caller, kind, payload, payload_hash, model, fee_per_unit, tier, max_units_mu,
       escrow, depth, deadline_height, regions, allowlist, tee_required, enqueue_height, enqueue_tx_index, status,
       attempts, not_before, carried_batches, cancel_requested
  FROM jobs ORDER BY task_id;

-- name: all_transitions
SELECT seq, task_id, from_status, to_status, reason, height, time FROM job_transitions ORDER BY seq;

-- name: all_entries
SELECT seq, debit, credit, amount, ref_kind, ref, block_height, time FROM ledger_entries ORDER BY seq;

-- name: all_balances
SELECT account, amount FROM balances ORDER BY account;

-- name: all_inclusions
SELECT task_id, proof_id, provider_id, height, tx_index, tx_hash, producer FROM proof_inclusions ORDER BY task_id;

-- name: all_refused
SELECT height, tx_index, tx_hash, kind, sender, field, reason FROM refused_txs ORDER BY height, tx_index;

-- name: all_cancels
SELECT height, tx_index, tx_hash, task_id, sender, outcome FROM cancel_requests ORDER BY height, tx_index;

-- name: all_claims
SELECT claim_id, provider_id, amount, time FROM claims ORDER BY claim_id;

-- name: all_idempotency
SELECT key, fingerprint, result FROM idempotency_keys ORDER BY key;

-- name: all_tiers
SELECT caller, tier FROM requester_tiers ORDER BY caller;

-- name: create_schema_version
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL);

-- name: has_schema_version
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version';

-- name: schema_version
SELECT coalesce(max(version), 0) FROM schema_version;

-- name: record_migration
INSERT INTO schema_version (version, name) VALUES (:version, :name);
