-- Every query of the PostgreSQL backend, each under a `-- name: <query>` header, bound by %(name)s.
-- No query reads the clock: times come in as parameters.

-- name: get_meta
SELECT value FROM meta WHERE key = %(key)s;

-- name: set_meta
INSERT INTO meta (key, value) VALUES (%(key)s, %(value)s)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: head_block
SELECT height, hash, parent, time, producer, beacon, issuance, fees, epoch, final
  FROM blocks ORDER BY height DESC LIMIT 1;

-- name: block_at
SELECT height, hash, parent, time, producer, beacon, issuance, fees, epoch, final
  FROM blocks WHERE height = %(height)s;

-- name: insert_block
INSERT INTO blocks (height, hash, parent, time, producer, beacon, issuance, fees, epoch, final)
VALUES (%(height)s, %(hash)s, %(parent)s, %(time)s, %(producer)s, %(beacon)s, %(issuance)s, %(fees)s, %(epoch)s, %(final)s);

-- name: finalize_blocks_through
UPDATE blocks SET final = TRUE WHERE height <= %(height)s AND NOT final;

-- name: insert_job
INSERT INTO jobs (task_id, chain_id, tx_hash, caller, kind, payload, payload_hash, model, fee_per_unit, tier,
                  max_units_mu, escrow, depth, deadline_height, regions, allowlist, tee_required, enqueue_height,
                  enqueue_tx_index, status, attempts, not_before, carried_batches, cancel_requested)
VALUES (%(task_id)s, %(chain_id)s, %(tx_hash)s, %(caller)s, %(kind)s, %(payload)s, %(payload_hash)s, %(model)s, %(fee_per_unit)s, %(tier)s,
        %(max_units_mu)s, %(escrow)s, %(depth)s, %(deadline_height)s, %(regions)s, %(allowlist)s, %(tee_required)s, %(enqueue_height)s,
        %(enqueue_tx_index)s, %(status)s, %(attempts)s, %(not_before)s, %(carried_batches)s, %(cancel_requested)s);

-- name: insert_transition
INSERT INTO job_transitions (task_id, from_status, to_status, reason, height, time)
VALUES (%(task_id)s, %(from_status)s, %(to_status)s, %(reason)s, %(height)s, %(time)s);

-- name: get_job
SELECT task_id, chain_id, tx_hash, caller, kind, payload, payload_hash, model, fee_per_unit, tier, max_units_mu,
       escrow, depth, deadline_height, regions, allowlist, tee_required, enqueue_height, enqueue_tx_index, status,
       attempts, not_before, carried_batches, cancel_requested
  FROM jobs WHERE task_id = %(task_id)s;

-- name: move_job
-- Guarded move: only a job still in %(from_status)s moves; no row changed means another writer moved it first.
UPDATE jobs SET status = %(to_status)s WHERE task_id = %(task_id)s AND status = %(from_status)s;

-- name: pending_jobs_through
SELECT task_id FROM jobs
 WHERE status = 'PENDING' AND enqueue_height <= %(height)s
 ORDER BY enqueue_height, enqueue_tx_index, task_id;

-- name: queued_jobs_at_deadline
SELECT task_id, chain_id, tx_hash, caller, kind, payload, payload_hash, model, fee_per_unit, tier, max_units_mu,
       escrow, depth, deadline_height, regions, allowlist, tee_required, enqueue_height, enqueue_tx_index, status,
       attempts, not_before, carried_batches, cancel_requested
  FROM jobs
 WHERE deadline_height = %(height)s AND status = 'QUEUED'
 ORDER BY enqueue_height, enqueue_tx_index, task_id;

-- name: open_job_count
SELECT count(*) FROM jobs
 WHERE caller = %(caller)s AND status NOT IN ('SETTLED', 'REJECTED', 'FAILED', 'CANCELLED');

-- name: open_job_counts
SELECT caller, count(*) FROM jobs
 WHERE caller = ANY(%(callers)s) AND status NOT IN ('SETTLED', 'REJECTED', 'FAILED', 'CANCELLED')
 GROUP BY caller;

-- name: set_cancel_requested
UPDATE jobs SET cancel_requested = TRUE WHERE task_id = %(task_id)s;

-- name: transitions_of
SELECT seq, task_id, from_status, to_status, reason, height, time
  FROM job_transitions WHERE task_id = %(task_id)s ORDER BY seq;

-- name: balance_of
SELECT amount FROM balances WHERE account = %(account)s;

-- name: add_balance
INSERT INTO balances (account, amount) VALUES (%(account)s, %(delta)s)
ON CONFLICT (account) DO UPDATE SET amount = balances.amount + excluded.amount;

-- name: sub_balance
UPDATE balances SET amount = amount + %(delta)s WHERE account = %(account)s;

-- name: insert_entry
INSERT INTO ledger_entries (debit, credit, amount, ref_kind, ref, block_height, time)
VALUES (%(debit)s, %(credit)s, %(amount)s, %(ref_kind)s, %(ref)s, %(block_height)s, %(time)s);

-- name: entry_deltas_above
-- The net change per account of the entries above a height, to reverse them on a reorg.
SELECT account, sum(delta)::bigint FROM (
    SELECT credit AS account, amount AS delta FROM ledger_entries WHERE block_height > %(height)s
    UNION ALL
    SELECT debit AS account, -amount AS delta FROM ledger_entries WHERE block_height > %(height)s
) AS d GROUP BY account;

-- name: delete_entries_above
DELETE FROM ledger_entries WHERE block_height > %(height)s;

-- name: delete_transitions_above
-- Only PENDING jobs can sit above a fork point, and their transitions are their creation rows.
DELETE FROM job_transitions
 WHERE task_id IN (SELECT task_id FROM jobs WHERE status = 'PENDING' AND enqueue_height > %(height)s);

-- name: delete_jobs_above
DELETE FROM jobs WHERE status = 'PENDING' AND enqueue_height > %(height)s;

-- name: delete_blocks_above
DELETE FROM blocks WHERE height > %(height)s;

-- name: delete_inclusions_above
DELETE FROM proof_inclusions WHERE height > %(height)s;

-- name: delete_refused_above
DELETE FROM refused_txs WHERE height > %(height)s;

-- name: delete_cancels_above
DELETE FROM cancel_requests WHERE height > %(height)s;

-- name: insert_proof_inclusion
INSERT INTO proof_inclusions (task_id, proof_id, provider_id, height, tx_index, tx_hash, producer)
VALUES (%(task_id)s, %(proof_id)s, %(provider_id)s, %(height)s, %(tx_index)s, %(tx_hash)s, %(producer)s)
ON CONFLICT (task_id) DO NOTHING;

-- name: proof_inclusion
SELECT task_id, proof_id, provider_id, height, tx_index, tx_hash, producer
  FROM proof_inclusions WHERE task_id = %(task_id)s;

-- name: insert_refused
INSERT INTO refused_txs (height, tx_index, tx_hash, kind, sender, field, reason)
VALUES (%(height)s, %(tx_index)s, %(tx_hash)s, %(kind)s, %(sender)s, %(field)s, %(reason)s);

-- name: insert_cancel
INSERT INTO cancel_requests (height, tx_index, tx_hash, task_id, sender, outcome)
VALUES (%(height)s, %(tx_index)s, %(tx_hash)s, %(task_id)s, %(sender)s, %(outcome)s);

-- name: waiting_cancels_through
SELECT height, tx_index, tx_hash, task_id, sender, outcome FROM cancel_requests
 WHERE height <= %(height)s AND outcome = 'WAITING' ORDER BY height, tx_index;

-- name: set_cancel_outcome
UPDATE cancel_requests SET outcome = %(outcome)s WHERE height = %(height)s AND tx_index = %(tx_index)s;

-- name: requester_tier
SELECT tier FROM requester_tiers WHERE caller = %(caller)s;

-- name: set_requester_tier
INSERT INTO requester_tiers (caller, tier) VALUES (%(caller)s, %(tier)s)
ON CONFLICT (caller) DO UPDATE SET tier = excluded.tier;

-- name: insert_claim
INSERT INTO claims (claim_id, provider_id, amount, time) VALUES (%(claim_id)s, %(provider_id)s, %(amount)s, %(time)s)
ON CONFLICT (claim_id) DO NOTHING;

-- name: get_idempotency
SELECT fingerprint, result FROM idempotency_keys WHERE key = %(key)s;

-- name: insert_idempotency
INSERT INTO idempotency_keys (key, fingerprint, result) VALUES (%(key)s, %(fingerprint)s, %(result)s);

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

-- name: has_schema
SELECT 1 FROM pg_namespace WHERE nspname = %(schema)s;

-- name: has_schema_version
SELECT to_regclass('schema_version') IS NOT NULL;

-- name: schema_version
SELECT coalesce(max(version), 0) FROM schema_version;

-- name: record_migration
INSERT INTO schema_version (version, name) VALUES (%(version)s, %(name)s);

-- name: lock_ingest
-- One ingester at a time across coordinator replicas, until the transaction ends.
SELECT pg_advisory_xact_lock(4242001);

-- name: lock_migrations
SELECT pg_advisory_xact_lock(4242002);

-- name: balances_of
SELECT account, amount FROM balances WHERE account = ANY(%(accounts)s);

-- name: add_balances
INSERT INTO balances (account, amount)
SELECT account, delta FROM unnest(%(accounts)s::text[], %(deltas)s::bigint[]) AS d (account, delta)
ON CONFLICT (account) DO UPDATE SET amount = balances.amount + excluded.amount;

-- name: sub_balances
UPDATE balances SET amount = balances.amount + d.delta
  FROM unnest(%(accounts)s::text[], %(deltas)s::bigint[]) AS d (account, delta)
 WHERE balances.account = d.account;

-- name: move_jobs
-- Guarded bulk move: only the jobs still in %(from_status)s move; the ids that moved come back.
UPDATE jobs SET status = %(to_status)s
 WHERE task_id = ANY(%(task_ids)s) AND status = %(from_status)s
RETURNING task_id;

-- name: copy_jobs
COPY jobs (task_id, chain_id, tx_hash, caller, kind, payload, payload_hash, model, fee_per_unit, tier, max_units_mu,
           escrow, depth, deadline_height, regions, allowlist, tee_required, enqueue_height, enqueue_tx_index, status,
           attempts, not_before, carried_batches, cancel_requested) FROM STDIN;

-- name: copy_transitions
COPY job_transitions (task_id, from_status, to_status, reason, height, time) FROM STDIN;

-- name: copy_entries
COPY ledger_entries (debit, credit, amount, ref_kind, ref, block_height, time) FROM STDIN;
