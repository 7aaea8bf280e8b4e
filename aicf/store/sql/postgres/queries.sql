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

-- name: get_job
SELECT task_id, chain_id, tx_hash, caller, kind, payload, payload_hash, model, fee_per_unit, tier, max_units_mu,
       escrow, depth, deadline_height, regions, allowlist, tee_required, enqueue_height, enqueue_tx_index, status,
       attempts, not_before, carried_batches, cancel_requested
  FROM jobs WHERE task_id = %(task_id)s;

-- name: get_jobs
-- Id arrays are bound in binary (the b placeholders): the text form escapes every byte of every element.
SELECT task_id, chain_id, tx_hash, caller, kind, payload, payload_hash, model, fee_per_unit, tier, max_units_mu,
       escrow, depth, deadline_height, regions, allowlist, tee_required, enqueue_height, enqueue_tx_index, status,
       attempts, not_before, carried_batches, cancel_requested
  FROM jobs WHERE task_id = ANY(%(task_ids)b);

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

-- name: insert_proof_inclusions
-- A block's inclusions in one statement, in the given order: the first one per task wins.
INSERT INTO proof_inclusions (task_id, proof_id, provider_id, height, tx_index, tx_hash, producer)
SELECT task_id, proof_id, provider_id, height, tx_index, tx_hash, producer
  FROM unnest(%(task_ids)b::bytea[], %(proof_ids)b::bytea[], %(provider_ids)b::bytea[], %(heights)b::bigint[],
              %(tx_indexes)b::bigint[], %(tx_hashes)b::bytea[], %(producers)b::bytea[])
       WITH ORDINALITY AS i (task_id, proof_id, provider_id, height, tx_index, tx_hash, producer, n)
 ORDER BY n
ON CONFLICT (task_id) DO NOTHING;

-- name: proof_inclusions_of
SELECT task_id, proof_id, provider_id, height, tx_index, tx_hash, producer
  FROM proof_inclusions WHERE task_id = ANY(%(task_ids)b);

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

-- name: try_lock_ingest
-- lock_ingest without waiting: false while another transaction holds it.
SELECT pg_try_advisory_xact_lock(4242001);

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
 WHERE task_id = ANY(%(task_ids)b) AND status = %(from_status)s
RETURNING task_id;

-- name: copy_jobs
COPY jobs (task_id, chain_id, tx_hash, caller, kind, payload, payload_hash, model, fee_per_unit, tier, max_units_mu,
           escrow, depth, deadline_height, regions, allowlist, tee_required, enqueue_height, enqueue_tx_index, status,
           attempts, not_before, carried_batches, cancel_requested) FROM STDIN;

-- name: copy_transitions
COPY job_transitions (task_id, from_status, to_status, reason, height, time) FROM STDIN;

-- name: copy_entries
COPY ledger_entries (debit, credit, amount, ref_kind, ref, block_height, time) FROM STDIN;

-- ----------------------------------------------------------------------------------------------------------
-- The coordinator's tables (migration 0003). Tuple fields and QoS maps are canonical CBOR blobs.

-- name: get_provider
SELECT provider_id, public_key, status, registered_at, kinds, models, devices, regions, tee_classes, max_leases,
       bonded, unbonding, unbonding_until, jailed_until, last_heartbeat_at, bucket_tokens_mu, bucket_at, strikes,
       updated_at, unit_burst_mu, unit_rate_mu_per_day
  FROM providers WHERE provider_id = %(provider_id)s;

-- name: insert_provider
INSERT INTO providers (provider_id, public_key, status, registered_at, kinds, models, devices, regions, tee_classes,
                       max_leases, bonded, unbonding, unbonding_until, jailed_until, last_heartbeat_at,
                       bucket_tokens_mu, bucket_at, strikes, updated_at, unit_burst_mu, unit_rate_mu_per_day)
VALUES (%(provider_id)s, %(public_key)s, %(status)s, %(registered_at)s, %(kinds)s, %(models)s, %(devices)s, %(regions)s, %(tee_classes)s,
        %(max_leases)s, %(bonded)s, %(unbonding)s, %(unbonding_until)s, %(jailed_until)s, %(last_heartbeat_at)s,
        %(bucket_tokens_mu)s, %(bucket_at)s, %(strikes)s, %(updated_at)s, %(unit_burst_mu)s,
        %(unit_rate_mu_per_day)s)
ON CONFLICT (provider_id) DO NOTHING;

-- name: update_provider
-- Guarded: only a provider still in the expected status is replaced.
UPDATE providers
   SET public_key = %(public_key)s, status = %(status)s, registered_at = %(registered_at)s, kinds = %(kinds)s,
       models = %(models)s, devices = %(devices)s, regions = %(regions)s, tee_classes = %(tee_classes)s,
       max_leases = %(max_leases)s, bonded = %(bonded)s, unbonding = %(unbonding)s, unbonding_until = %(unbonding_until)s,
       jailed_until = %(jailed_until)s, last_heartbeat_at = %(last_heartbeat_at)s, bucket_tokens_mu = %(bucket_tokens_mu)s,
       bucket_at = %(bucket_at)s, strikes = %(strikes)s, updated_at = %(updated_at)s,
       unit_burst_mu = %(unit_burst_mu)s, unit_rate_mu_per_day = %(unit_rate_mu_per_day)s
 WHERE provider_id = %(provider_id)s AND status = %(expected_status)s;

-- name: all_providers
SELECT provider_id, public_key, status, registered_at, kinds, models, devices, regions, tee_classes, max_leases,
       bonded, unbonding, unbonding_until, jailed_until, last_heartbeat_at, bucket_tokens_mu, bucket_at, strikes,
       updated_at, unit_burst_mu, unit_rate_mu_per_day
  FROM providers ORDER BY provider_id;

-- name: providers_due
-- The sweep's work: jails that ended (jailed_until 0 is permanent) and unbonding periods that are over. Each arm
-- has its partial index (migration 0007): a provider is in one only while jailed or unbonding.
SELECT provider_id, public_key, status, registered_at, kinds, models, devices, regions, tee_classes, max_leases,
       bonded, unbonding, unbonding_until, jailed_until, last_heartbeat_at, bucket_tokens_mu, bucket_at, strikes,
       updated_at, unit_burst_mu, unit_rate_mu_per_day
  FROM providers
 WHERE (status = 'JAILED' AND jailed_until > 0 AND jailed_until <= %(now)s)
    OR (unbonding > 0 AND unbonding_until <= %(now)s)
 ORDER BY provider_id;

-- name: active_provider_ids
SELECT provider_id FROM providers
 WHERE status = 'ACTIVE' AND registered_at <= %(registered_by)s ORDER BY provider_id;

-- name: insert_provider_move
INSERT INTO provider_transitions (provider_id, from_status, to_status, reason, time)
VALUES (%(provider_id)s, %(from_status)s, %(to_status)s, %(reason)s, %(time)s);

-- name: all_provider_moves
SELECT seq, provider_id, from_status, to_status, reason, time FROM provider_transitions ORDER BY seq;

-- name: record_heartbeat
-- A heartbeat in one statement: touch the provider (only last_heartbeat_at and updated_at: not the profile, so the
-- registry version stays, nor the status, so no transition), mark the slot, extend the live unexpired leases (never
-- shortening one nor reviving a dead one), and return the live leases. Every part sees the rows as they were
-- before the statement, so the extended leases' new expiry comes from `extended`. No row: unknown provider
-- (nothing written); one row of NULLs: a provider without live leases.
WITH touched AS (
    UPDATE providers SET last_heartbeat_at = %(now)s, updated_at = %(now)s
     WHERE provider_id = %(provider_id)s
    RETURNING provider_id
), marked AS (
    INSERT INTO heartbeats (provider_id, slot) SELECT provider_id, %(slot)s FROM touched ON CONFLICT DO NOTHING
), extended AS (
    UPDATE leases SET expires_at = %(expires_at)s
     WHERE provider_id IN (SELECT provider_id FROM touched) AND status = 'LIVE'
       AND expires_at > %(now)s AND expires_at < %(expires_at)s
    RETURNING lease_id, expires_at
)
SELECT l.lease_id, l.task_id, l.provider_id, l.attempt, l.granted_at, COALESCE(e.expires_at, l.expires_at),
       l.status, l.epoch, l.ended_at, l.grant_sig
  FROM touched t
  LEFT JOIN leases l ON l.provider_id = t.provider_id AND l.status = 'LIVE'
  LEFT JOIN extended e ON e.lease_id = l.lease_id
 ORDER BY l.granted_at, l.lease_id;

-- name: heartbeat_slots
SELECT slot FROM heartbeats WHERE provider_id = %(provider_id)s AND slot BETWEEN %(first)s AND %(last)s ORDER BY slot;

-- name: heartbeat_slots_of
-- One row per provider with live slots, its slots in one array (a row per slot cost more to send and decode).
SELECT provider_id, array_agg(slot ORDER BY slot) FROM heartbeats
 WHERE provider_id = ANY(%(provider_ids)s) AND slot BETWEEN %(first)s AND %(last)s GROUP BY provider_id;

-- name: all_heartbeats
SELECT provider_id, slot FROM heartbeats ORDER BY provider_id, slot;

-- name: ready_jobs
-- The matcher's order: tier, then priority_key = fee_per_unit - max_units_mu / 1000 - 10 * enqueue_height (a
-- stored generated column), then enqueue height and task_id. `now` is a parameter: no clock in SQL.
SELECT task_id, chain_id, tx_hash, caller, kind, payload, payload_hash, model, fee_per_unit, tier, max_units_mu,
       escrow, depth, deadline_height, regions, allowlist, tee_required, enqueue_height, enqueue_tx_index, status,
       attempts, not_before, carried_batches, cancel_requested
  FROM jobs
 WHERE status = 'QUEUED' AND not_before <= %(now)s
 ORDER BY tier DESC, priority_key DESC, enqueue_height, task_id
 LIMIT %(limit)s;

-- name: put_decision
INSERT INTO decisions (task_id, attempt, decision, winner, time) VALUES (%(task_id)s, %(attempt)s, %(decision)s, %(winner)s, %(time)s)
ON CONFLICT (task_id, attempt) DO UPDATE
   SET decision = excluded.decision, winner = excluded.winner, time = excluded.time;

-- name: decisions_of
SELECT task_id, attempt, decision, winner, time FROM decisions WHERE task_id = %(task_id)s ORDER BY attempt;

-- name: all_decisions
SELECT task_id, attempt, decision, winner, time FROM decisions ORDER BY task_id, attempt;

-- name: get_lease
SELECT lease_id, task_id, provider_id, attempt, granted_at, expires_at, status, epoch, ended_at, grant_sig
  FROM leases WHERE lease_id = %(lease_id)s;

-- name: leases_of_task
SELECT lease_id, task_id, provider_id, attempt, granted_at, expires_at, status, epoch, ended_at, grant_sig
  FROM leases WHERE task_id = %(task_id)s ORDER BY attempt, lease_id;

-- name: live_leases_of
SELECT lease_id, task_id, provider_id, attempt, granted_at, expires_at, status, epoch, ended_at, grant_sig
  FROM leases WHERE provider_id = %(provider_id)s AND status = 'LIVE' ORDER BY granted_at, lease_id;

-- name: live_lease_counts
SELECT provider_id, count(*) FROM leases WHERE status = 'LIVE' GROUP BY provider_id;

-- name: expired_leases
SELECT lease_id, task_id, provider_id, attempt, granted_at, expires_at, status, epoch, ended_at, grant_sig
  FROM leases WHERE status = 'LIVE' AND expires_at <= %(now)s ORDER BY expires_at, lease_id LIMIT %(limit)s;

-- name: end_lease
-- Guarded LIVE -> the new status.
UPDATE leases SET status = %(to_status)s, ended_at = %(ended_at)s WHERE lease_id = %(lease_id)s AND status = 'LIVE';

-- name: all_leases
SELECT lease_id, task_id, provider_id, attempt, granted_at, expires_at, status, epoch, ended_at, grant_sig
  FROM leases ORDER BY lease_id;

-- name: set_job_schedule
UPDATE jobs SET attempts = %(attempts)s, not_before = %(not_before)s WHERE task_id = %(task_id)s;

-- name: insert_proof
INSERT INTO proofs (proof_id, task_id, lease_id, provider_id, kind, envelope, received_at, latency_ms, verdict,
                    message, acceptance, acceptance_sig, units_mu, output_digest, qos)
VALUES (%(proof_id)s, %(task_id)s, %(lease_id)s, %(provider_id)s, %(kind)s, %(envelope)s, %(received_at)s, %(latency_ms)s, %(verdict)s,
        %(message)s, %(acceptance)s, %(acceptance_sig)s, %(units_mu)s, %(output_digest)s, %(qos)s)
ON CONFLICT (proof_id) DO NOTHING;

-- name: proof_seen
SELECT 1 FROM proofs WHERE proof_id = %(proof_id)s;

-- name: get_proof
SELECT proof_id, task_id, lease_id, provider_id, kind, envelope, received_at, latency_ms, verdict, message,
       acceptance, acceptance_sig, units_mu, output_digest, qos
  FROM proofs WHERE proof_id = %(proof_id)s;

-- name: accepted_proof_of
SELECT proof_id, task_id, lease_id, provider_id, kind, envelope, received_at, latency_ms, verdict, message,
       acceptance, acceptance_sig, units_mu, output_digest, qos
  FROM proofs WHERE task_id = %(task_id)s AND verdict = 'ACCEPT' ORDER BY received_at, proof_id LIMIT 1;

-- name: accepted_proofs_of
-- accepted_proof_of for many tasks: the earliest accepted proof of each.
SELECT DISTINCT ON (task_id) proof_id, task_id, lease_id, provider_id, kind, envelope, received_at, latency_ms,
       verdict, message, acceptance, acceptance_sig, units_mu, output_digest, qos
  FROM proofs WHERE task_id = ANY(%(task_ids)b) AND verdict = 'ACCEPT' ORDER BY task_id, received_at, proof_id;

-- name: accepted_latencies_since
SELECT latency_ms FROM proofs
 WHERE provider_id = %(provider_id)s AND verdict = 'ACCEPT' AND received_at >= %(since)s
 ORDER BY received_at, proof_id;

-- name: all_proofs
SELECT proof_id, task_id, lease_id, provider_id, kind, envelope, received_at, latency_ms, verdict, message,
       acceptance, acceptance_sig, units_mu, output_digest, qos
  FROM proofs ORDER BY proof_id;

-- name: insert_results
-- A block's results in one statement, in the given order: the first one per task wins; the written ids come back.
INSERT INTO results (task_id, proof_id, kind, output_digest, units_mu, qos, block_height, tx_index, miner_id,
                     provider_id)
SELECT task_id, proof_id, kind, output_digest, units_mu, qos, block_height, tx_index, miner_id, provider_id
  FROM unnest(%(task_ids)b::bytea[], %(proof_ids)b::bytea[], %(kinds)b::text[], %(output_digests)b::bytea[],
              %(units_mus)b::bigint[], %(qoses)b::bytea[], %(block_heights)b::bigint[], %(tx_indexes)b::bigint[],
              %(miner_ids)b::bytea[], %(provider_ids)b::bytea[])
       WITH ORDINALITY AS r (task_id, proof_id, kind, output_digest, units_mu, qos, block_height, tx_index, miner_id,
                             provider_id, n)
 ORDER BY n
ON CONFLICT (task_id) DO NOTHING
RETURNING task_id;

-- name: get_result
SELECT task_id, proof_id, kind, output_digest, units_mu, qos, block_height, tx_index, miner_id, provider_id
  FROM results WHERE task_id = %(task_id)s;

-- name: unsettled_results_through
SELECT r.task_id, r.proof_id, r.kind, r.output_digest, r.units_mu, r.qos, r.block_height, r.tx_index, r.miner_id,
       r.provider_id
  FROM results AS r
 WHERE r.block_height <= %(height)s AND NOT EXISTS (SELECT 1 FROM payouts AS p WHERE p.task_id = r.task_id)
 ORDER BY r.block_height, r.tx_index, r.task_id;

-- name: all_results
SELECT task_id, proof_id, kind, output_digest, units_mu, qos, block_height, tx_index, miner_id, provider_id
  FROM results ORDER BY task_id;

-- name: delete_results_above
DELETE FROM results WHERE block_height > %(height)s;

-- name: revert_job_moves_above
-- A surviving job goes back to the `from` of its first chain-recorded move above the fork point: the same as
-- undoing those moves newest first.
UPDATE jobs
   SET status = (SELECT t.from_status FROM job_transitions AS t
                  WHERE t.task_id = jobs.task_id AND t.height > %(height)s ORDER BY t.seq LIMIT 1)
 WHERE task_id IN (SELECT task_id FROM job_transitions WHERE height > %(height)s);

-- name: delete_job_moves_above
DELETE FROM job_transitions WHERE height > %(height)s;

-- name: entry_delta_above
-- What entries above a height added to one account (balance_through = balance - this).
SELECT (coalesce(sum(CASE WHEN credit = %(account)s THEN amount ELSE 0 END), 0)
      - coalesce(sum(CASE WHEN debit = %(account)s THEN amount ELSE 0 END), 0))::bigint
  FROM ledger_entries WHERE block_height > %(height)s;

-- name: insert_batch
INSERT INTO batches (epoch, finalized_height, params_hash, price_bps, next_price_bps, root, batch, payouts, carried,
                     reward, units_mu, treasury_before, trap_seed, time)
VALUES (%(epoch)s, %(finalized_height)s, %(params_hash)s, %(price_bps)s, %(next_price_bps)s, %(root)s, %(batch)s, %(payouts)s, %(carried)s,
        %(reward)s, %(units_mu)s, %(treasury_before)s, %(trap_seed)s, %(time)s)
ON CONFLICT (epoch) DO NOTHING;

-- name: insert_payout
-- task_id is UNIQUE: a task paid a second time fails here (ConcurrentUpdateError).
INSERT INTO payouts (position, payout_id, epoch, task_id, provider_id, miner_id, proof_id, units_mu, base_rate,
                     price_bps, reward, provider, miner, fund, charged, params_hash)
VALUES (%(position)s, %(payout_id)s, %(epoch)s, %(task_id)s, %(provider_id)s, %(miner_id)s, %(proof_id)s, %(units_mu)s, %(base_rate)s,
        %(price_bps)s, %(reward)s, %(provider)s, %(miner)s, %(fund)s, %(charged)s, %(params_hash)s);

-- name: get_batch
SELECT epoch, finalized_height, params_hash, price_bps, next_price_bps, root, batch, payouts, carried, reward,
       units_mu, treasury_before, trap_seed, time
  FROM batches WHERE epoch = %(epoch)s;

-- name: last_batch_epoch
SELECT max(epoch) FROM batches;

-- name: all_batches
SELECT epoch, finalized_height, params_hash, price_bps, next_price_bps, root, batch, payouts, carried, reward,
       units_mu, treasury_before, trap_seed, time
  FROM batches ORDER BY epoch;

-- name: payouts_of_epoch
SELECT payout_id, epoch, task_id, provider_id, miner_id, proof_id, units_mu, base_rate, price_bps, reward, provider,
       miner, fund, charged, params_hash
  FROM payouts WHERE epoch = %(epoch)s ORDER BY position;

-- name: payout_of_task
SELECT payout_id, epoch, task_id, provider_id, miner_id, proof_id, units_mu, base_rate, price_bps, reward, provider,
       miner, fund, charged, params_hash
  FROM payouts WHERE task_id = %(task_id)s;

-- name: all_payouts
SELECT payout_id, epoch, task_id, provider_id, miner_id, proof_id, units_mu, base_rate, price_bps, reward, provider,
       miner, fund, charged, params_hash
  FROM payouts ORDER BY epoch, position;

-- name: add_carried
UPDATE jobs SET carried_batches = carried_batches + 1 WHERE task_id = %(task_id)s;

-- name: insert_slash
INSERT INTO slashes (evidence_hash, provider_id, reason, subject, task_id, amount, evidence, time, jailed_until)
VALUES (%(evidence_hash)s, %(provider_id)s, %(reason)s, %(subject)s, %(task_id)s, %(amount)s, %(evidence)s, %(time)s, %(jailed_until)s)
ON CONFLICT (subject) DO NOTHING;

-- name: slashes_of
SELECT evidence_hash, provider_id, reason, subject, task_id, amount, evidence, time, jailed_until
  FROM slashes WHERE provider_id = %(provider_id)s ORDER BY time, seq;

-- name: recent_slashes
SELECT evidence_hash, provider_id, reason, subject, task_id, amount, evidence, time, jailed_until
  FROM slashes ORDER BY time DESC, seq DESC LIMIT %(limit)s;

-- name: all_slashes
SELECT evidence_hash, provider_id, reason, subject, task_id, amount, evidence, time, jailed_until
  FROM slashes ORDER BY subject;

-- name: get_claim
SELECT claim_id, provider_id, amount, time FROM claims WHERE claim_id = %(claim_id)s;

-- name: events_since
SELECT seq, topic, data, time FROM events WHERE seq > %(seq)s ORDER BY seq LIMIT %(limit)s;

-- name: events_since_topics
SELECT seq, topic, data, time FROM events
 WHERE seq > %(seq)s AND topic = ANY(%(topics)s)
 ORDER BY seq LIMIT %(limit)s;

-- name: latest_event_seq
SELECT last FROM event_counter WHERE id = 1;

-- name: all_events
SELECT seq, topic, data, time FROM events ORDER BY seq;

-- name: delete_expired_nonces
DELETE FROM rpc_nonces WHERE provider_id = %(provider_id)s AND expires_at <= %(now)s;

-- name: delete_nonce
-- A refused heartbeat gives its nonce back (issue 15).
DELETE FROM rpc_nonces WHERE provider_id = %(provider_id)s AND nonce = %(nonce)s;

-- name: insert_nonce
INSERT INTO rpc_nonces (provider_id, nonce, expires_at) VALUES (%(provider_id)s, %(nonce)s, %(expires_at)s)
ON CONFLICT (provider_id, nonce) DO NOTHING;

-- name: all_nonces
SELECT provider_id, nonce, expires_at FROM rpc_nonces ORDER BY provider_id, nonce;

-- name: copy_payouts
COPY payouts (position, payout_id, epoch, task_id, provider_id, miner_id, proof_id, units_mu, base_rate, price_bps,
              reward, provider, miner, fund, charged, params_hash) FROM STDIN;

-- name: add_carried_many
UPDATE jobs SET carried_batches = jobs.carried_batches + c.n
  FROM (SELECT t, count(*) AS n FROM unnest(%(task_ids)s::bytea[]) AS u (t) GROUP BY t) AS c
 WHERE jobs.task_id = c.t;

-- name: list_jobs
-- The API's job listing: every job after the cursor, by task_id.
SELECT task_id, chain_id, tx_hash, caller, kind, payload, payload_hash, model, fee_per_unit, tier, max_units_mu,
       escrow, depth, deadline_height, regions, allowlist, tee_required, enqueue_height, enqueue_tx_index, status,
       attempts, not_before, carried_batches, cancel_requested
  FROM jobs
 WHERE task_id > %(after)s
 ORDER BY task_id
 LIMIT %(limit)s;

-- name: list_jobs_in_status
-- The API's job listing for one status, after the cursor, by task_id.
SELECT task_id, chain_id, tx_hash, caller, kind, payload, payload_hash, model, fee_per_unit, tier, max_units_mu,
       escrow, depth, deadline_height, regions, allowlist, tee_required, enqueue_height, enqueue_tx_index, status,
       attempts, not_before, carried_batches, cancel_requested
  FROM jobs
 WHERE status = %(status)s AND task_id > %(after)s
 ORDER BY task_id
 LIMIT %(limit)s;

-- name: job_counts
SELECT status, count(*) FROM jobs GROUP BY status;

-- traps (0004) -------------------------------------------------------------------------------------

-- name: insert_trap_seed
INSERT INTO trap_seeds (epoch, commitment, committed_at, committed_height, seed, revealed_at)
VALUES (%(epoch)s, %(commitment)s, %(committed_at)s, %(committed_height)s, %(seed)s, %(revealed_at)s)
ON CONFLICT (epoch) DO NOTHING;

-- name: reveal_trap_seed
UPDATE trap_seeds SET seed = %(seed)s, revealed_at = %(time)s WHERE epoch = %(epoch)s AND revealed_at IS NULL;

-- name: get_trap_seed
SELECT epoch, commitment, committed_at, committed_height, seed, revealed_at FROM trap_seeds WHERE epoch = %(epoch)s;

-- name: insert_trap
INSERT INTO traps (caller, n, epoch, model, prompt, max_tokens, funded, created_at, task_id, log_hash,
                   answer_digest, revealed_at)
VALUES (%(caller)s, %(n)s, %(epoch)s, %(model)s, %(prompt)s, %(max_tokens)s, %(funded)s, %(created_at)s, %(task_id)s, %(log_hash)s,
        %(answer_digest)s, %(revealed_at)s)
ON CONFLICT DO NOTHING;

-- name: update_trap
UPDATE traps SET n = %(n)s, epoch = %(epoch)s, model = %(model)s, prompt = %(prompt)s, max_tokens = %(max_tokens)s,
       funded = %(funded)s, created_at = %(created_at)s, task_id = %(task_id)s, log_hash = %(log_hash)s,
       answer_digest = %(answer_digest)s, revealed_at = %(revealed_at)s
 WHERE caller = %(caller)s;

-- name: get_trap
SELECT caller, n, epoch, model, prompt, max_tokens, funded, created_at, task_id, log_hash, answer_digest, revealed_at
  FROM traps WHERE caller = %(caller)s;

-- name: open_traps
SELECT caller, n, epoch, model, prompt, max_tokens, funded, created_at, task_id, log_hash, answer_digest, revealed_at
  FROM traps WHERE revealed_at IS NULL ORDER BY n LIMIT %(limit)s;

-- name: trap_counts
SELECT model, count(*) FROM traps GROUP BY model;

-- name: ai_job_counts
SELECT model, count(*) FROM jobs WHERE kind = 'ai' GROUP BY model;

-- name: jobs_of_caller
SELECT task_id, chain_id, tx_hash, caller, kind, payload, payload_hash, model, fee_per_unit, tier, max_units_mu,
       escrow, depth, deadline_height, regions, allowlist, tee_required, enqueue_height, enqueue_tx_index, status,
       attempts, not_before, carried_batches, cancel_requested
  FROM jobs WHERE caller = %(caller)s ORDER BY enqueue_height, enqueue_tx_index;

-- name: lease_counts
SELECT status, count(*) FROM leases GROUP BY status;

-- name: proof_verdict_counts
SELECT verdict, count(*) FROM proofs GROUP BY verdict;

-- name: slash_totals
SELECT reason, count(*), coalesce(sum(amount), 0)::bigint FROM slashes GROUP BY reason;

-- name: put_pool
INSERT INTO pools (pool_id, record) VALUES (%(pool_id)s, %(record)s) ON CONFLICT (pool_id) DO NOTHING;

-- name: get_pool
SELECT record FROM pools WHERE pool_id = %(pool_id)s;

-- name: all_pools
SELECT pool_id, record FROM pools ORDER BY pool_id;

-- name: registry_version
SELECT version FROM registry_version WHERE id = 1;

-- name: claim_ready_jobs
-- ready_jobs for a matcher pass: the rows stay locked until the pass commits, and rows another replica's pass
-- holds are skipped, so concurrent passes take disjoint jobs.
SELECT task_id, chain_id, tx_hash, caller, kind, payload, payload_hash, model, fee_per_unit, tier, max_units_mu,
       escrow, depth, deadline_height, regions, allowlist, tee_required, enqueue_height, enqueue_tx_index, status,
       attempts, not_before, carried_batches, cancel_requested
  FROM jobs
 WHERE status = 'QUEUED' AND not_before <= %(now)s
 ORDER BY tier DESC, priority_key DESC, enqueue_height, task_id
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED;

-- name: lock_provider
SELECT provider_id, public_key, status, registered_at, kinds, models, devices, regions, tee_classes, max_leases,
       bonded, unbonding, unbonding_until, jailed_until, last_heartbeat_at, bucket_tokens_mu, bucket_at, strikes,
       updated_at, unit_burst_mu, unit_rate_mu_per_day
  FROM providers WHERE provider_id = %(provider_id)s
   FOR UPDATE SKIP LOCKED;

-- vendor roots and attestation policy (migration 0006, docs/ROOTS.md) -------------------------------------
-- name: insert_root
INSERT INTO vendor_roots (vendor, name, version, der, sha256, activation_height, expiry_height, added_height,
                          added_at)
VALUES (%(vendor)s, %(name)s, %(version)s, %(der)s, %(sha256)s, %(activation_height)s, %(expiry_height)s,
        %(added_height)s, %(added_at)s)
ON CONFLICT (vendor, name, version) DO NOTHING;

-- name: set_root_expiry
UPDATE vendor_roots SET expiry_height = %(expiry_height)s
 WHERE vendor = %(vendor)s AND name = %(name)s AND version = %(version)s;

-- name: vendor_roots
SELECT vendor, name, version, der, sha256, activation_height, expiry_height, added_height, added_at
  FROM vendor_roots ORDER BY vendor, name, version;

-- name: roots_in_force
SELECT vendor, name, version, der, sha256, activation_height, expiry_height, added_height, added_at
  FROM vendor_roots
 WHERE activation_height <= %(height)s AND (expiry_height IS NULL OR %(height)s < expiry_height)
 ORDER BY vendor, name, version;

-- name: insert_policy
INSERT INTO attestation_policies (kind, version, activation_height, policy, added_height, added_at)
VALUES (%(kind)s, %(version)s, %(activation_height)s, %(policy)s, %(added_height)s, %(added_at)s)
ON CONFLICT (kind, version) DO NOTHING;

-- name: attestation_policies
SELECT kind, version, activation_height, policy, added_height, added_at
  FROM attestation_policies ORDER BY kind, version;

-- name: policies_in_force
-- Per kind, the highest version already active at the height.
SELECT p.kind, p.version, p.activation_height, p.policy, p.added_height, p.added_at
  FROM attestation_policies p
 WHERE p.version = (SELECT max(q.version) FROM attestation_policies q
                     WHERE q.kind = p.kind AND q.activation_height <= %(height)s)
 ORDER BY p.kind;

-- name: insert_trust_change
INSERT INTO trust_transitions (what, action, subject, detail, height, time)
VALUES (%(what)s, %(action)s, %(subject)s, %(detail)s, %(height)s, %(time)s)
RETURNING seq;

-- name: trust_changes
SELECT seq, what, action, subject, detail, height, time FROM trust_transitions ORDER BY seq;

-- name: trust_version
SELECT coalesce(max(seq), 0)::bigint FROM trust_transitions;

-- name: move_job_logged
-- A guarded job move and its transition row in one round trip (SQLite: move_job, insert_transition): the
-- row is written only if the guarded move happened, so the statement's row count says whether it did.
WITH moved AS (
    UPDATE jobs SET status = %(to_status)s WHERE task_id = %(task_id)s AND status = %(from_status)s RETURNING task_id
)
INSERT INTO job_transitions (task_id, from_status, to_status, reason, height, time)
SELECT task_id, %(from_status)s, %(to_status)s, %(reason)s, %(height)s, %(time)s FROM moved;

-- name: lease_job_logged
-- A lease grant in one round trip: claim the QUEUED row, move it, write the lease and the transition (a row
-- another transaction holds is skipped; a data-modifying WITH runs whether or not the outer statement reads it).
WITH claimed AS (
    SELECT task_id FROM jobs
     WHERE task_id = %(task_id)s AND status = 'QUEUED' AND not_before <= %(time)s
       FOR UPDATE SKIP LOCKED
), moved AS (
    UPDATE jobs SET status = 'LEASED' FROM claimed WHERE jobs.task_id = claimed.task_id RETURNING jobs.task_id
), leased AS (
    INSERT INTO leases (lease_id, task_id, provider_id, attempt, granted_at, expires_at, status, epoch, ended_at,
                        grant_sig)
    SELECT %(lease_id)s, task_id, %(provider_id)s, %(attempt)s, %(granted_at)s, %(expires_at)s, %(status)s,
           %(epoch)s, %(ended_at)s, %(grant_sig)s
      FROM moved
)
INSERT INTO job_transitions (task_id, from_status, to_status, reason, height, time)
SELECT task_id, 'QUEUED', 'LEASED', 'assigned', NULL, %(time)s FROM moved;

-- name: append_event
-- Bump the gapless counter and write the event in one round trip (the counter row stays held until the commit).
WITH counter AS (UPDATE event_counter SET last = last + 1 WHERE id = 1 RETURNING last)
INSERT INTO events (seq, topic, data, time) SELECT last, %(topic)s, %(data)s, %(time)s FROM counter RETURNING seq;

-- name: append_events
-- append_event for many events in one round trip: the counter moves by their number, and event i (from 1, in
-- array order) takes the i-th number after the old value.
WITH counter AS (
    UPDATE event_counter SET last = last + cardinality(%(topics)s::text[]) WHERE id = 1
    RETURNING last - cardinality(%(topics)s::text[]) AS base
)
INSERT INTO events (seq, topic, data, time)
SELECT base + e.n, e.topic, e.data, %(time)s
  FROM counter, unnest(%(topics)s::text[], %(datas)b::bytea[]) WITH ORDINALITY AS e(topic, data, n)
RETURNING seq;

-- name: oldest_queued_height
-- The dashboard's oldest-queued age: the (status, enqueue_height) index answers it without a scan.
SELECT min(enqueue_height) FROM jobs WHERE status = 'QUEUED';

-- name: live_leases_granted_by
-- The sweep's runtime-budget candidates: a budget is at least two TTLs, so only leases granted that long ago can
-- be overdue. LIVE rows are few (at most max_leases per provider); the status index finds them.
SELECT lease_id, task_id, provider_id, attempt, granted_at, expires_at, status, epoch, ended_at, grant_sig
  FROM leases WHERE status = 'LIVE' AND granted_at <= %(time)s ORDER BY granted_at, lease_id LIMIT %(limit)s;

-- name: trap_of_task
-- The trap (if any) whose fresh caller enqueued the task: a proof submission asks with the job it reads.
SELECT caller, n, epoch, model, prompt, max_tokens, funded, created_at, task_id, log_hash, answer_digest, revealed_at
  FROM traps WHERE caller = (SELECT caller FROM jobs WHERE task_id = %(task_id)s);

-- name: leases_of_tasks
-- leases_of_task for a matcher pass's jobs at once, in the same order per task.
SELECT lease_id, task_id, provider_id, attempt, granted_at, expires_at, status, epoch, ended_at, grant_sig
  FROM leases WHERE task_id = ANY(%(task_ids)s) ORDER BY task_id, attempt, lease_id;

-- name: accepted_proofs_not_included
-- The sweep's stranded acceptances: SUBMITTED jobs (few) whose accepted proof has no inclusion on chain.
SELECT p.proof_id, p.task_id, p.lease_id, p.provider_id, p.kind, p.envelope, p.received_at, p.latency_ms,
       p.verdict, p.message, p.acceptance, p.acceptance_sig, p.units_mu, p.output_digest, p.qos
  FROM jobs j
  JOIN proofs p ON p.task_id = j.task_id AND p.verdict = 'ACCEPT'
 WHERE j.status = 'SUBMITTED' AND p.received_at <= %(received_by)s
   AND NOT EXISTS (SELECT 1 FROM proof_inclusions i WHERE i.task_id = j.task_id)
 ORDER BY p.received_at, p.proof_id
 LIMIT %(limit)s;

-- name: devnet_meta
SELECT key, value FROM devnet_meta;

-- name: set_devnet_meta
INSERT INTO devnet_meta (key, value) VALUES (%(key)s, %(value)s)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: devnet_blocks
SELECT data FROM devnet_blocks ORDER BY height;

-- name: put_devnet_block
INSERT INTO devnet_blocks (height, data) VALUES (%(height)s, %(data)s);

-- name: drop_devnet_blocks_above
DELETE FROM devnet_blocks WHERE height > %(height)s;

-- name: devnet_mempool
SELECT seq, data FROM devnet_mempool ORDER BY seq;

-- name: put_devnet_pending
INSERT INTO devnet_mempool (seq, data) VALUES (%(seq)s, %(data)s);

-- name: drop_devnet_pending_through
DELETE FROM devnet_mempool WHERE seq <= %(seq)s;

-- name: clear_devnet_mempool
DELETE FROM devnet_mempool;

-- name: jobs_by_tx_hash
SELECT task_id, chain_id, tx_hash, caller, kind, payload, payload_hash, model, fee_per_unit, tier, max_units_mu,
       escrow, depth, deadline_height, regions, allowlist, tee_required, enqueue_height, enqueue_tx_index, status,
       attempts, not_before, carried_batches, cancel_requested
  FROM jobs WHERE tx_hash = %(tx_hash)s ORDER BY enqueue_height DESC;

-- name: refused_by_tx_hash
SELECT height, tx_index, tx_hash, kind, sender, field, reason FROM refused_txs
 WHERE tx_hash = %(tx_hash)s ORDER BY height DESC;

-- name: cancels_by_tx_hash
SELECT height, tx_index, tx_hash, task_id, sender, outcome FROM cancel_requests
 WHERE tx_hash = %(tx_hash)s ORDER BY height DESC;
