-- Every named query both backends run, written once with `:name` placeholders (SQLite's own style;
-- aicf.store.sqlfiles translates them to psycopg's `%(name)s` when it loads the PostgreSQL set).
-- Queries one backend runs alone, or that the two dialects write differently, live in the overlays
-- sqlite.sql and postgres.sql beside this file; a name is defined once across a file and its overlay.
-- Portable forms used here: TRUE/NOT for booleans (SQLite stores 1/0), CAST(... AS BIGINT) for sums
-- (PostgreSQL's sum() of a BIGINT is NUMERIC), a table-qualified column in ON CONFLICT updates.
-- No query reads the clock: times come in as parameters.

-- name: get_meta
SELECT value FROM meta WHERE key = :key;

-- name: set_meta
INSERT INTO meta (key, value) VALUES (:key, :value)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: outages_since
-- Coordinator outages (aicf.core.outages) are meta rows 'outage:<started_at, 20 digits>' -> ended_at: few (one per
-- restart or database outage), so a prefix scan of the primary key is enough.
SELECT key, value FROM meta WHERE key LIKE 'outage:%' AND value > :since ORDER BY key;

-- name: insert_outage
-- One row per outage: a second transaction that found the same outage inserts nothing and credits nothing.
INSERT INTO meta (key, value) VALUES (:key, :value) ON CONFLICT (key) DO NOTHING;

-- name: credit_live_leases
-- An outage credited: every lease still live when it began lives `gap` seconds longer.
UPDATE leases SET expires_at = expires_at + :gap WHERE status = 'LIVE' AND expires_at > :started_at;

-- name: head_block
SELECT {blocks}
  FROM blocks ORDER BY height DESC LIMIT 1;

-- name: block_at
SELECT {blocks}
  FROM blocks WHERE height = :height;

-- name: insert_block
INSERT INTO blocks ({blocks:insert})
VALUES (:height, :hash, :parent, :time, :producer, :beacon, :issuance, :fees, :epoch, :final);

-- name: finalize_blocks_through
UPDATE blocks SET final = TRUE WHERE height <= :height AND NOT final;

-- name: insert_job
INSERT INTO jobs ({jobs:insert})
VALUES (:task_id, :chain_id, :tx_hash, :caller, :kind, :payload, :payload_hash, :model, :fee_per_unit, :tier,
        :max_units_mu, :escrow, :depth, :deadline_height, :regions, :allowlist, :tee_required, :enqueue_height,
        :enqueue_tx_index, :status, :attempts, :not_before, :carried_batches, :cancel_requested);

-- name: get_job
SELECT {jobs}
  FROM jobs WHERE task_id = :task_id;

-- name: pending_jobs_through
SELECT task_id FROM jobs
 WHERE status = 'PENDING' AND enqueue_height <= :height
 ORDER BY enqueue_height, enqueue_tx_index, task_id;

-- name: queued_jobs_at_deadline
SELECT {jobs}
  FROM jobs
 WHERE deadline_height = :height AND status = 'QUEUED'
 ORDER BY enqueue_height, enqueue_tx_index, task_id;

-- name: open_job_count
SELECT count(*) FROM jobs
 WHERE caller = :caller AND status NOT IN ('SETTLED', 'REJECTED', 'FAILED', 'CANCELLED');

-- name: set_cancel_requested
UPDATE jobs SET cancel_requested = TRUE WHERE task_id = :task_id;

-- name: transitions_of
SELECT {job_transitions}
  FROM job_transitions WHERE task_id = :task_id ORDER BY seq;

-- name: balance_of
SELECT amount FROM balances WHERE account = :account;

-- name: add_balance
INSERT INTO balances (account, amount) VALUES (:account, :delta)
ON CONFLICT (account) DO UPDATE SET amount = balances.amount + excluded.amount;

-- name: sub_balance
UPDATE balances SET amount = amount + :delta WHERE account = :account;

-- name: insert_entry
INSERT INTO ledger_entries ({ledger_entries:insert})
VALUES (:debit, :credit, :amount, :ref_kind, :ref, :block_height, :time);

-- name: entry_deltas_above
-- The net change per account of the entries above a height, to reverse them on a reorg.
SELECT account, CAST(sum(delta) AS BIGINT) FROM (
    SELECT credit AS account, amount AS delta FROM ledger_entries WHERE block_height > :height
    UNION ALL
    SELECT debit AS account, -amount AS delta FROM ledger_entries WHERE block_height > :height
) AS d GROUP BY account;

-- name: positive_balances_with_prefix
-- Accounts named :prefix + anything with a balance above 0 (an exact prefix match: no collation or wildcard).
SELECT account, amount FROM balances WHERE substr(account, 1, length(:prefix)) = :prefix AND amount > 0
 ORDER BY account;

-- name: entries_with_ref
SELECT {ledger_entries} FROM ledger_entries WHERE ref_kind = :ref_kind AND ref = :ref ORDER BY seq;

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

-- name: insert_refused
INSERT INTO refused_txs ({refused_txs:insert})
VALUES (:height, :tx_index, :tx_hash, :kind, :sender, :field, :reason);

-- name: insert_cancel
INSERT INTO cancel_requests ({cancel_requests:insert})
VALUES (:height, :tx_index, :tx_hash, :task_id, :sender, :outcome);

-- name: waiting_cancels_through
SELECT {cancel_requests} FROM cancel_requests
 WHERE height <= :height AND outcome = 'WAITING' ORDER BY height, tx_index;

-- name: set_cancel_outcome
UPDATE cancel_requests SET outcome = :outcome WHERE height = :height AND tx_index = :tx_index;

-- name: requester_tier
SELECT tier FROM requester_tiers WHERE caller = :caller;

-- name: set_requester_tier
INSERT INTO requester_tiers (caller, tier) VALUES (:caller, :tier)
ON CONFLICT (caller) DO UPDATE SET tier = excluded.tier;

-- name: insert_claim
INSERT INTO claims ({claims:insert}) VALUES (:claim_id, :provider_id, :amount, :time)
ON CONFLICT (claim_id) DO NOTHING;

-- name: get_idempotency
SELECT fingerprint, result FROM idempotency_keys WHERE key = :key;

-- name: insert_idempotency
INSERT INTO idempotency_keys ({idempotency_keys:insert}) VALUES (:key, :fingerprint, :result);

-- name: all_meta
SELECT key, value FROM meta ORDER BY key;

-- name: all_blocks
SELECT {blocks} FROM blocks ORDER BY height;

-- name: all_jobs
SELECT {jobs}
  FROM jobs ORDER BY task_id;

-- name: all_transitions
SELECT {job_transitions} FROM job_transitions ORDER BY seq;

-- name: all_entries
SELECT {ledger_entries} FROM ledger_entries ORDER BY seq;

-- name: all_balances
SELECT account, amount FROM balances ORDER BY account;

-- name: all_inclusions
SELECT {proof_inclusions} FROM proof_inclusions ORDER BY task_id;

-- name: all_refused
SELECT {refused_txs} FROM refused_txs ORDER BY height, tx_index;

-- name: all_cancels
SELECT {cancel_requests} FROM cancel_requests ORDER BY height, tx_index;

-- name: all_claims
SELECT {claims} FROM claims ORDER BY claim_id;

-- name: all_idempotency
SELECT {idempotency_keys} FROM idempotency_keys ORDER BY key;

-- name: all_tiers
SELECT caller, tier FROM requester_tiers ORDER BY caller;

-- name: create_schema_version
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL);

-- name: schema_version
SELECT coalesce(max(version), 0) FROM schema_version;

-- name: record_migration
INSERT INTO schema_version (version, name) VALUES (:version, :name);

-- ----------------------------------------------------------------------------------------------------------
-- The coordinator's tables (migration 0003). Tuple fields and QoS maps are canonical CBOR blobs.

-- name: get_provider
SELECT {providers}
  FROM providers WHERE provider_id = :provider_id;

-- name: insert_provider
INSERT INTO providers ({providers:insert})
VALUES (:provider_id, :public_key, :status, :registered_at, :kinds, :models, :devices, :regions, :tee_classes,
        :max_leases, :bonded, :unbonding, :unbonding_until, :jailed_until, :last_heartbeat_at,
        :bucket_tokens_mu, :bucket_at, :strikes, :updated_at, :unit_burst_mu,
        :unit_rate_mu_per_day)
ON CONFLICT (provider_id) DO NOTHING;

-- name: update_provider
-- Guarded: only a provider still in :expected_status is replaced.
UPDATE providers
   SET public_key = :public_key, status = :status, registered_at = :registered_at, kinds = :kinds,
       models = :models, devices = :devices, regions = :regions, tee_classes = :tee_classes,
       max_leases = :max_leases, bonded = :bonded, unbonding = :unbonding, unbonding_until = :unbonding_until,
       jailed_until = :jailed_until, last_heartbeat_at = :last_heartbeat_at, bucket_tokens_mu = :bucket_tokens_mu,
       bucket_at = :bucket_at, strikes = :strikes, updated_at = :updated_at,
       unit_burst_mu = :unit_burst_mu, unit_rate_mu_per_day = :unit_rate_mu_per_day
 WHERE provider_id = :provider_id AND status = :expected_status;

-- name: all_providers
SELECT {providers}
  FROM providers ORDER BY provider_id;

-- name: providers_due
-- The sweep's work: jails that ended (jailed_until 0 is permanent) and unbonding periods that are over. Each arm
-- has its partial index (migration 0007): a provider is in one only while jailed or unbonding.
SELECT {providers}
  FROM providers
 WHERE (status = 'JAILED' AND jailed_until > 0 AND jailed_until <= :now)
    OR (unbonding > 0 AND unbonding_until <= :now)
 ORDER BY provider_id;

-- name: active_provider_ids
SELECT provider_id FROM providers
 WHERE status = 'ACTIVE' AND registered_at <= :registered_by ORDER BY provider_id;

-- name: insert_provider_move
INSERT INTO provider_transitions ({provider_transitions:insert})
VALUES (:provider_id, :from_status, :to_status, :reason, :time);

-- name: all_provider_moves
SELECT {provider_transitions} FROM provider_transitions ORDER BY seq;

-- name: heartbeat_slots
SELECT slot FROM heartbeats WHERE provider_id = :provider_id AND slot BETWEEN :first AND :last ORDER BY slot;

-- name: all_heartbeats
SELECT provider_id, slot FROM heartbeats ORDER BY provider_id, slot;

-- name: put_decision
INSERT INTO decisions ({decisions:insert}) VALUES (:task_id, :attempt, :decision, :winner, :time)
ON CONFLICT (task_id, attempt) DO UPDATE
   SET decision = excluded.decision, winner = excluded.winner, time = excluded.time;

-- name: decisions_of
SELECT {decisions} FROM decisions WHERE task_id = :task_id ORDER BY attempt;

-- name: all_decisions
SELECT {decisions} FROM decisions ORDER BY task_id, attempt;

-- name: get_lease
SELECT {leases}
  FROM leases WHERE lease_id = :lease_id;

-- name: leases_of_task
SELECT {leases}
  FROM leases WHERE task_id = :task_id ORDER BY attempt, lease_id;

-- name: live_leases_of
SELECT {leases}
  FROM leases WHERE provider_id = :provider_id AND status = 'LIVE' ORDER BY granted_at, lease_id;

-- name: live_lease_counts
SELECT provider_id, count(*) FROM leases WHERE status = 'LIVE' GROUP BY provider_id;

-- name: expired_leases
SELECT {leases}
  FROM leases WHERE status = 'LIVE' AND expires_at <= :now ORDER BY expires_at, lease_id LIMIT :limit;

-- name: end_lease
-- Guarded LIVE -> :to_status.
UPDATE leases SET status = :to_status, ended_at = :ended_at WHERE lease_id = :lease_id AND status = 'LIVE';

-- name: all_leases
SELECT {leases}
  FROM leases ORDER BY lease_id;

-- name: set_job_schedule
UPDATE jobs SET attempts = :attempts, not_before = :not_before WHERE task_id = :task_id;

-- name: insert_proof
INSERT INTO proofs ({proofs:insert})
VALUES (:proof_id, :task_id, :lease_id, :provider_id, :kind, :envelope, :received_at, :latency_ms, :verdict,
        :message, :acceptance, :acceptance_sig, :units_mu, :output_digest, :qos)
ON CONFLICT (proof_id) DO NOTHING;

-- name: proof_seen
SELECT 1 FROM proofs WHERE proof_id = :proof_id;

-- name: get_proof
SELECT {proofs}
  FROM proofs WHERE proof_id = :proof_id;

-- name: accepted_proof_of
SELECT {proofs}
  FROM proofs WHERE task_id = :task_id AND verdict = 'ACCEPT' ORDER BY received_at, proof_id LIMIT 1;

-- name: accepted_latencies_since
SELECT latency_ms FROM proofs
 WHERE provider_id = :provider_id AND verdict = 'ACCEPT' AND received_at >= :since
 ORDER BY received_at, proof_id;

-- name: all_proofs
SELECT {proofs}
  FROM proofs ORDER BY proof_id;

-- name: get_result
SELECT {results}
  FROM results WHERE task_id = :task_id;

-- name: unsettled_results_through
SELECT {results:r}
  FROM results AS r
 WHERE r.block_height <= :height AND NOT EXISTS (SELECT 1 FROM payouts AS p WHERE p.task_id = r.task_id)
 ORDER BY r.block_height, r.tx_index, r.task_id;

-- name: all_results
SELECT {results}
  FROM results ORDER BY task_id;

-- name: delete_results_above
DELETE FROM results WHERE block_height > :height;

-- name: revert_job_moves_above
-- A surviving job goes back to the `from` of its first chain-recorded move above the fork point: the same as
-- undoing those moves newest first.
UPDATE jobs
   SET status = (SELECT t.from_status FROM job_transitions AS t
                  WHERE t.task_id = jobs.task_id AND t.height > :height ORDER BY t.seq LIMIT 1)
 WHERE task_id IN (SELECT task_id FROM job_transitions WHERE height > :height);

-- name: delete_job_moves_above
DELETE FROM job_transitions WHERE height > :height;

-- name: entry_delta_above
-- What entries above a height added to one account (balance_through = balance - this).
SELECT CAST(coalesce(sum(CASE WHEN credit = :account THEN amount ELSE 0 END), 0)
          - coalesce(sum(CASE WHEN debit = :account THEN amount ELSE 0 END), 0) AS BIGINT)
  FROM ledger_entries WHERE block_height > :height;

-- name: insert_batch
INSERT INTO batches ({batches:insert})
VALUES (:epoch, :finalized_height, :params_hash, :price_bps, :next_price_bps, :root, :batch, :payouts, :carried,
        :reward, :units_mu, :treasury_before, :trap_seed, :time)
ON CONFLICT (epoch) DO NOTHING;

-- name: insert_payout
-- task_id is UNIQUE: a task paid a second time fails here (ConcurrentUpdateError).
INSERT INTO payouts (position, payout_id, epoch, task_id, provider_id, miner_id, proof_id, units_mu, base_rate,
                     price_bps, reward, provider, miner, fund, charged, params_hash)
VALUES (:position, :payout_id, :epoch, :task_id, :provider_id, :miner_id, :proof_id, :units_mu, :base_rate,
        :price_bps, :reward, :provider, :miner, :fund, :charged, :params_hash);

-- name: get_batch
SELECT {batches}
  FROM batches WHERE epoch = :epoch;

-- name: last_batch_epoch
SELECT max(epoch) FROM batches;

-- name: all_batches
SELECT {batches}
  FROM batches ORDER BY epoch;

-- name: payouts_of_epoch
SELECT {payouts}
  FROM payouts WHERE epoch = :epoch ORDER BY position;

-- name: payout_of_task
SELECT {payouts}
  FROM payouts WHERE task_id = :task_id;

-- name: all_payouts
SELECT {payouts}
  FROM payouts ORDER BY epoch, position;

-- name: add_carried
UPDATE jobs SET carried_batches = carried_batches + 1 WHERE task_id = :task_id;

-- name: insert_slash
INSERT INTO slashes ({slashes:insert})
VALUES (:evidence_hash, :provider_id, :reason, :subject, :task_id, :amount, :evidence, :time, :jailed_until)
ON CONFLICT (subject) DO NOTHING;

-- name: slashes_of
SELECT {slashes}
  FROM slashes WHERE provider_id = :provider_id ORDER BY time, seq;

-- name: recent_slashes
SELECT {slashes}
  FROM slashes ORDER BY time DESC, seq DESC LIMIT :limit;

-- name: all_slashes
SELECT {slashes}
  FROM slashes ORDER BY subject;

-- name: get_claim
SELECT {claims} FROM claims WHERE claim_id = :claim_id;

-- name: events_since
SELECT {events} FROM events WHERE seq > :seq ORDER BY seq LIMIT :limit;

-- name: latest_event_seq
SELECT last FROM event_counter WHERE id = 1;

-- name: all_events
SELECT {events} FROM events ORDER BY seq;

-- name: delete_expired_nonces
DELETE FROM rpc_nonces WHERE provider_id = :provider_id AND expires_at <= :now;

-- name: nonce_in_use
SELECT 1 FROM rpc_nonces WHERE provider_id = :provider_id AND nonce = :nonce AND expires_at > :now;

-- name: delete_nonce
-- A refused heartbeat gives its nonce back (issue 15).
DELETE FROM rpc_nonces WHERE provider_id = :provider_id AND nonce = :nonce;

-- name: insert_nonce
INSERT INTO rpc_nonces ({rpc_nonces:insert}) VALUES (:provider_id, :nonce, :expires_at)
ON CONFLICT (provider_id, nonce) DO NOTHING;

-- name: all_nonces
SELECT {rpc_nonces} FROM rpc_nonces ORDER BY provider_id, nonce;

-- name: list_jobs
-- The API's job listing: every job after the cursor, by task_id.
SELECT {jobs}
  FROM jobs
 WHERE task_id > :after
 ORDER BY task_id
 LIMIT :limit;

-- name: list_jobs_in_status
-- The API's job listing for one status, after the cursor, by task_id.
SELECT {jobs}
  FROM jobs
 WHERE status = :status AND task_id > :after
 ORDER BY task_id
 LIMIT :limit;

-- name: job_counts
SELECT status, count(*) FROM jobs GROUP BY status;

-- traps (0004) -------------------------------------------------------------------------------------

-- name: insert_trap_seed
INSERT INTO trap_seeds ({trap_seeds:insert})
VALUES (:epoch, :commitment, :committed_at, :committed_height, :seed, :revealed_at)
ON CONFLICT (epoch) DO NOTHING;

-- name: reveal_trap_seed
UPDATE trap_seeds SET seed = :seed, revealed_at = :time WHERE epoch = :epoch AND revealed_at IS NULL;

-- name: get_trap_seed
SELECT {trap_seeds} FROM trap_seeds WHERE epoch = :epoch;

-- name: insert_trap
INSERT INTO traps ({traps:insert})
VALUES (:caller, :n, :epoch, :model, :prompt, :max_tokens, :funded, :created_at, :task_id, :log_hash,
        :answer_digest, :revealed_at)
ON CONFLICT DO NOTHING;

-- name: update_trap
UPDATE traps SET n = :n, epoch = :epoch, model = :model, prompt = :prompt, max_tokens = :max_tokens,
       funded = :funded, created_at = :created_at, task_id = :task_id, log_hash = :log_hash,
       answer_digest = :answer_digest, revealed_at = :revealed_at
 WHERE caller = :caller;

-- name: get_trap
SELECT {traps}
  FROM traps WHERE caller = :caller;

-- name: open_traps
SELECT {traps}
  FROM traps WHERE revealed_at IS NULL ORDER BY n LIMIT :limit;

-- name: trap_counts
SELECT model, count(*) FROM traps GROUP BY model;

-- grants (0011) ------------------------------------------------------------------------------------
-- name: insert_grant
INSERT INTO grants ({grants:insert})
VALUES (:caller, :m, :epoch, :requester, :request_hash, :model, :body, :funded, :created_at, :sent_at, :task_id,
        :reclaimed, :closed_at)
ON CONFLICT DO NOTHING;

-- name: update_grant
UPDATE grants SET sent_at = :sent_at, task_id = :task_id, reclaimed = :reclaimed, closed_at = :closed_at
 WHERE caller = :caller;

-- name: get_grant
SELECT {grants} FROM grants WHERE caller = :caller;

-- name: grant_of_request
SELECT {grants} FROM grants WHERE request_hash = :request_hash;

-- name: open_grants
SELECT {grants} FROM grants WHERE closed_at IS NULL ORDER BY m LIMIT :limit;

-- name: grant_used
SELECT CAST(coalesce(sum(funded - reclaimed), 0) AS BIGINT) FROM grants WHERE requester = :requester;

-- name: next_grant_number
SELECT coalesce(max(m) + 1, 0) FROM grants;

-- name: ai_job_counts
SELECT model, count(*) FROM jobs WHERE kind = 'ai' GROUP BY model;

-- name: jobs_of_caller
SELECT {jobs}
  FROM jobs WHERE caller = :caller ORDER BY enqueue_height, enqueue_tx_index;

-- name: lease_counts
SELECT status, count(*) FROM leases GROUP BY status;

-- name: proof_verdict_counts
SELECT verdict, count(*) FROM proofs GROUP BY verdict;

-- name: slash_totals
SELECT reason, count(*), CAST(coalesce(sum(amount), 0) AS BIGINT) FROM slashes GROUP BY reason;

-- name: put_pool
INSERT INTO pools (pool_id, record) VALUES (:pool_id, :record) ON CONFLICT (pool_id) DO NOTHING;

-- name: get_pool
SELECT record FROM pools WHERE pool_id = :pool_id;

-- name: all_pools
SELECT pool_id, record FROM pools ORDER BY pool_id;

-- name: registry_version
SELECT version FROM registry_version WHERE id = 1;

-- vendor roots and attestation policy (migration 0006, docs/ROOTS.md) -------------------------------------

-- name: insert_root
INSERT INTO vendor_roots ({vendor_roots:insert})
VALUES (:vendor, :name, :version, :der, :sha256, :activation_height, :expiry_height, :added_height, :added_at)
ON CONFLICT (vendor, name, version) DO NOTHING;

-- name: set_root_expiry
UPDATE vendor_roots SET expiry_height = :expiry_height
 WHERE vendor = :vendor AND name = :name AND version = :version;

-- name: vendor_roots
SELECT {vendor_roots}
  FROM vendor_roots ORDER BY vendor, name, version;

-- name: roots_in_force
SELECT {vendor_roots}
  FROM vendor_roots
 WHERE activation_height <= :height AND (expiry_height IS NULL OR :height < expiry_height)
 ORDER BY vendor, name, version;

-- name: insert_policy
INSERT INTO attestation_policies ({attestation_policies:insert})
VALUES (:kind, :version, :activation_height, :policy, :added_height, :added_at)
ON CONFLICT (kind, version) DO NOTHING;

-- name: attestation_policies
SELECT {attestation_policies}
  FROM attestation_policies ORDER BY kind, version;

-- name: policies_in_force
-- Per kind, the highest version already active at the height.
SELECT {attestation_policies:p}
  FROM attestation_policies p
 WHERE p.version = (SELECT max(q.version) FROM attestation_policies q
                     WHERE q.kind = p.kind AND q.activation_height <= :height)
 ORDER BY p.kind;

-- name: insert_trust_change
INSERT INTO trust_transitions ({trust_transitions:insert})
VALUES (:what, :action, :subject, :detail, :height, :time)
RETURNING seq;

-- name: trust_changes
SELECT {trust_transitions} FROM trust_transitions ORDER BY seq;

-- name: trust_version
SELECT CAST(coalesce(max(seq), 0) AS BIGINT) FROM trust_transitions;

-- name: oldest_queued_height
-- The dashboard's oldest-queued age: the (status, enqueue_height) index answers it without a scan.
SELECT min(enqueue_height) FROM jobs WHERE status = 'QUEUED';

-- name: live_leases_granted_by
-- The sweep's runtime-budget candidates: a budget is at least two TTLs, so only leases granted that long ago can
-- be overdue. LIVE rows are few (at most max_leases per provider); the status index finds them.
SELECT {leases}
  FROM leases WHERE status = 'LIVE' AND granted_at <= :time ORDER BY granted_at, lease_id LIMIT :limit;

-- name: trap_of_task
-- The trap (if any) whose fresh caller enqueued the task: a proof submission asks with the job it reads.
SELECT {traps}
  FROM traps WHERE caller = (SELECT caller FROM jobs WHERE task_id = :task_id);

-- name: accepted_proofs_not_included
-- The sweep's stranded acceptances: SUBMITTED jobs (few) whose accepted proof has no inclusion on chain.
SELECT {proofs:p}
  FROM jobs j
  JOIN proofs p ON p.task_id = j.task_id AND p.verdict = 'ACCEPT'
 WHERE j.status = 'SUBMITTED' AND p.received_at <= :received_by
   AND NOT EXISTS (SELECT 1 FROM proof_inclusions i WHERE i.task_id = j.task_id)
 ORDER BY p.received_at, p.proof_id
 LIMIT :limit;

-- name: devnet_meta
SELECT key, value FROM devnet_meta;

-- name: set_devnet_meta
INSERT INTO devnet_meta (key, value) VALUES (:key, :value)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: devnet_blocks
SELECT data FROM devnet_blocks ORDER BY height;

-- name: devnet_blocks_above
SELECT data FROM devnet_blocks WHERE height > :height ORDER BY height;

-- name: put_devnet_block
INSERT INTO devnet_blocks (height, data) VALUES (:height, :data);

-- name: drop_devnet_blocks_above
DELETE FROM devnet_blocks WHERE height > :height;

-- name: devnet_mempool
SELECT seq, data FROM devnet_mempool ORDER BY seq;

-- name: put_devnet_pending
INSERT INTO devnet_mempool (seq, data) VALUES (:seq, :data);

-- name: drop_devnet_pending_through
DELETE FROM devnet_mempool WHERE seq <= :seq;

-- name: clear_devnet_mempool
DELETE FROM devnet_mempool;

-- name: jobs_by_tx_hash
SELECT {jobs}
  FROM jobs WHERE tx_hash = :tx_hash ORDER BY enqueue_height DESC;

-- name: refused_by_tx_hash
SELECT {refused_txs} FROM refused_txs
 WHERE tx_hash = :tx_hash ORDER BY height DESC;

-- name: cancels_by_tx_hash
SELECT {cancel_requests} FROM cancel_requests
 WHERE tx_hash = :tx_hash ORDER BY height DESC;

-- name: insert_operator_change
INSERT INTO operator_changes ({operator_changes:insert})
VALUES (:height, :tx_index, :tx_hash, :sender, :op, :subject, :before, :after, :effective_epoch, :time);

-- name: operator_changes_of
SELECT {operator_changes} FROM operator_changes WHERE op = :op ORDER BY height, tx_index;

-- name: operator_changes_about
SELECT {operator_changes} FROM operator_changes WHERE op = :op AND subject = :subject ORDER BY height, tx_index;

-- name: recent_operator_changes
-- one trap_fund and one trap_reclaim per trap (and grant): not the operator's decisions, and they would fill the list
SELECT {operator_changes} FROM operator_changes WHERE op NOT IN ('trap_fund', 'trap_reclaim')
 ORDER BY height DESC, tx_index DESC
LIMIT :limit;

-- name: all_operator_changes
SELECT {operator_changes} FROM operator_changes ORDER BY height, tx_index;

-- name: delete_operator_changes_above
DELETE FROM operator_changes WHERE height > :height;

-- name: max_unsettled_units
SELECT COALESCE(MAX(max_units_mu), 0) FROM jobs
WHERE status NOT IN ('SETTLED', 'CANCELLED', 'FAILED', 'REJECTED');
