-- PostgreSQL's own queries (the common ones are in queries.sql), with `:name` placeholders like every
-- query file: bulk forms (COPY, unnest and = ANY arrays), FOR UPDATE SKIP LOCKED claims, data-modifying WITH,
-- advisory locks and the catalog probes. `:name!b` binds a parameter in binary (psycopg's `%(name)b`: bytea
-- and array parameters skip the text round trip).

-- name: has_schema_version
SELECT to_regclass('schema_version') IS NOT NULL;

-- name: ready_jobs
-- The matcher's order: tier, then priority_key = fee_per_unit - max_units_mu / 1000 - 10 * enqueue_height (a
-- stored generated column), then enqueue height and task_id. `now` is a parameter: no clock in SQL.
SELECT {jobs}
  FROM jobs
 WHERE status = 'QUEUED' AND not_before <= :now
 ORDER BY tier DESC, priority_key DESC, enqueue_height, task_id
 LIMIT :limit;

-- name: events_since_topics
SELECT {events} FROM events
 WHERE seq > :seq AND topic = ANY(:topics)
 ORDER BY seq LIMIT :limit;

-- name: get_jobs
-- Id arrays are bound in binary (the b placeholders): the text form escapes every byte of every element.
SELECT {jobs}
  FROM jobs WHERE task_id = ANY(:task_ids!b);

-- name: open_job_counts
SELECT caller, count(*) FROM jobs
 WHERE caller = ANY(:callers) AND status NOT IN ('SETTLED', 'REJECTED', 'FAILED', 'CANCELLED')
 GROUP BY caller;

-- name: insert_proof_inclusions
-- A block's inclusions in one statement, in the given order: the first one per task wins.
INSERT INTO proof_inclusions ({proof_inclusions:insert})
SELECT {proof_inclusions}
  FROM unnest(:task_ids!b::bytea[], :proof_ids!b::bytea[], :provider_ids!b::bytea[], :heights!b::bigint[],
              :tx_indexes!b::bigint[], :tx_hashes!b::bytea[], :producers!b::bytea[])
       WITH ORDINALITY AS i (task_id, proof_id, provider_id, height, tx_index, tx_hash, producer, n)
 ORDER BY n
ON CONFLICT (task_id) DO NOTHING;

-- name: proof_inclusions_of
SELECT {proof_inclusions}
  FROM proof_inclusions WHERE task_id = ANY(:task_ids!b);

-- name: has_schema
SELECT 1 FROM pg_namespace WHERE nspname = :schema;

-- name: lock_ingest
-- One ingester at a time across coordinator replicas, until the transaction ends.
SELECT pg_advisory_xact_lock(4242001);

-- name: try_lock_ingest
-- lock_ingest without waiting: false while another transaction holds it.
SELECT pg_try_advisory_xact_lock(4242001);

-- name: lock_devnet
-- One writer of the embedded devnet at a time across coordinator replicas, until the transaction ends.
SELECT pg_advisory_xact_lock(4242003);

-- name: try_lock_writer
-- The writer lock (docs/EVM.md): which replica sends the coordinator's transactions to an EVM node. Session
-- level, on a connection of its own: held until released or until the session ends (a killed holder's does).
SELECT pg_try_advisory_lock(4242004);

-- name: writer_session_keepalive
-- The writer lock's session: the server probes an idle client after 10 s, every 5 s, 3 times (and gives up on
-- unacknowledged data after 25 s), so a holder whose host vanished without closing its socket loses the lock in
-- about 25 s, not after the kernel's two hours.
SELECT set_config('tcp_keepalives_idle', '10', false), set_config('tcp_keepalives_interval', '5', false),
       set_config('tcp_keepalives_count', '3', false), set_config('tcp_user_timeout', '25000', false);

-- name: holds_writer_lock
-- Whether this session still holds the writer lock (a bigint key shows as classid 0, objid, objsubid 1).
SELECT EXISTS (SELECT 1 FROM pg_locks
                WHERE locktype = 'advisory' AND classid = 0 AND objid = 4242004 AND objsubid = 1
                  AND pid = pg_backend_pid() AND granted);

-- name: unlock_writer
SELECT pg_advisory_unlock(4242004);

-- name: lock_migrations
SELECT pg_advisory_xact_lock(4242002);

-- name: balances_of
SELECT account, amount FROM balances WHERE account = ANY(:accounts);

-- name: add_balances
INSERT INTO balances (account, amount)
SELECT account, delta FROM unnest(:accounts::text[], :deltas::bigint[]) AS d (account, delta)
ON CONFLICT (account) DO UPDATE SET amount = balances.amount + excluded.amount;

-- name: sub_balances
UPDATE balances SET amount = balances.amount + d.delta
  FROM unnest(:accounts::text[], :deltas::bigint[]) AS d (account, delta)
 WHERE balances.account = d.account;

-- name: move_jobs
-- Guarded bulk move: only the jobs still in :from_status move; the ids that moved come back.
UPDATE jobs SET status = :to_status
 WHERE task_id = ANY(:task_ids!b) AND status = :from_status
RETURNING task_id;

-- name: copy_jobs
COPY jobs ({jobs:insert}) FROM STDIN;

-- name: copy_transitions
COPY job_transitions ({job_transitions:insert}) FROM STDIN;

-- name: copy_entries
COPY ledger_entries ({ledger_entries:insert}) FROM STDIN;

-- name: record_heartbeat
-- A heartbeat in one statement: touch the provider (only last_heartbeat_at and updated_at: not the profile, so the
-- registry version stays, nor the status, so no transition), mark the slot, extend the live unexpired leases (never
-- shortening one nor reviving a dead one), and return the live leases. Every part sees the rows as they were
-- before the statement, so the extended leases' new expiry comes from `extended`. No row: unknown provider
-- (nothing written); one row of NULLs: a provider without live leases.
WITH touched AS (
    UPDATE providers SET last_heartbeat_at = :now, updated_at = :now
     WHERE provider_id = :provider_id
    RETURNING provider_id
), marked AS (
    INSERT INTO heartbeats (provider_id, slot) SELECT provider_id, :slot FROM touched ON CONFLICT DO NOTHING
), extended AS (
    UPDATE leases SET expires_at = :expires_at
     WHERE provider_id IN (SELECT provider_id FROM touched) AND status = 'LIVE'
       AND expires_at > :now AND expires_at < :expires_at
    RETURNING lease_id, expires_at
)
SELECT l.lease_id, l.task_id, l.provider_id, l.attempt, l.granted_at, COALESCE(e.expires_at, l.expires_at),
       l.status, l.epoch, l.ended_at, l.grant_sig
  FROM touched t
  LEFT JOIN leases l ON l.provider_id = t.provider_id AND l.status = 'LIVE'
  LEFT JOIN extended e ON e.lease_id = l.lease_id
 ORDER BY l.granted_at, l.lease_id;

-- name: heartbeat_slots_of
-- One row per provider with live slots, its slots in one array (a row per slot cost more to send and decode).
SELECT provider_id, array_agg(slot ORDER BY slot) FROM heartbeats
 WHERE provider_id = ANY(:provider_ids) AND slot BETWEEN :first AND :last GROUP BY provider_id;

-- name: accepted_proofs_of
-- accepted_proof_of for many tasks: the earliest accepted proof of each.
SELECT DISTINCT ON (task_id) {proofs}
  FROM proofs WHERE task_id = ANY(:task_ids!b) AND verdict = 'ACCEPT' ORDER BY task_id, received_at, proof_id;

-- name: insert_results
-- A block's results in one statement, in the given order: the first one per task wins; the written ids come back.
INSERT INTO results ({results:insert})
SELECT {results}
  FROM unnest(:task_ids!b::bytea[], :proof_ids!b::bytea[], :kinds!b::text[], :output_digests!b::bytea[],
              :units_mus!b::bigint[], :qoses!b::bytea[], :block_heights!b::bigint[], :tx_indexes!b::bigint[],
              :miner_ids!b::bytea[], :provider_ids!b::bytea[])
       WITH ORDINALITY AS r (task_id, proof_id, kind, output_digest, units_mu, qos, block_height, tx_index, miner_id,
                             provider_id, n)
 ORDER BY n
ON CONFLICT (task_id) DO NOTHING
RETURNING task_id;

-- name: copy_payouts
COPY payouts (position, payout_id, epoch, task_id, provider_id, miner_id, proof_id, units_mu, base_rate, price_bps,
              reward, provider, miner, fund, charged, params_hash) FROM STDIN;

-- name: add_carried_many
UPDATE jobs SET carried_batches = jobs.carried_batches + c.n
  FROM (SELECT t, count(*) AS n FROM unnest(:task_ids::bytea[]) AS u (t) GROUP BY t) AS c
 WHERE jobs.task_id = c.t;

-- name: claim_ready_jobs
-- ready_jobs for a matcher pass: the rows stay locked until the pass commits, and rows another replica's pass
-- holds are skipped, so concurrent passes take disjoint jobs.
SELECT {jobs}
  FROM jobs
 WHERE status = 'QUEUED' AND not_before <= :now
 ORDER BY tier DESC, priority_key DESC, enqueue_height, task_id
 LIMIT :limit
   FOR UPDATE SKIP LOCKED;

-- name: lock_provider
SELECT {providers}
  FROM providers WHERE provider_id = :provider_id
   FOR UPDATE SKIP LOCKED;

-- name: move_job_logged
-- A guarded job move and its transition row in one round trip (SQLite: move_job, insert_transition): the
-- row is written only if the guarded move happened, so the statement's row count says whether it did.
WITH moved AS (
    UPDATE jobs SET status = :to_status WHERE task_id = :task_id AND status = :from_status RETURNING task_id
)
INSERT INTO job_transitions ({job_transitions:insert})
SELECT task_id, :from_status, :to_status, :reason, :height, :time FROM moved;

-- name: lease_job_logged
-- A lease grant in one round trip: claim the QUEUED row, move it, write the lease and the transition (a row
-- another transaction holds is skipped; a data-modifying WITH runs whether or not the outer statement reads it).
WITH claimed AS (
    SELECT task_id FROM jobs
     WHERE task_id = :task_id AND status = 'QUEUED' AND not_before <= :time
       FOR UPDATE SKIP LOCKED
), moved AS (
    UPDATE jobs SET status = 'LEASED' FROM claimed WHERE jobs.task_id = claimed.task_id RETURNING jobs.task_id
), leased AS (
    INSERT INTO leases ({leases:insert})
    SELECT :lease_id, task_id, :provider_id, :attempt, :granted_at, :expires_at, :status,
           :epoch, :ended_at, :grant_sig
      FROM moved
)
INSERT INTO job_transitions ({job_transitions:insert})
SELECT task_id, 'QUEUED', 'LEASED', 'assigned', NULL, :time FROM moved;

-- name: append_event
-- Bump the gapless counter and write the event in one round trip (the counter row stays held until the commit).
WITH counter AS (UPDATE event_counter SET last = last + 1 WHERE id = 1 RETURNING last)
INSERT INTO events ({events:insert}) SELECT last, :topic, :data, :time FROM counter RETURNING seq;

-- name: append_events
-- append_event for many events in one round trip: the counter moves by their number, and event i (from 1, in
-- array order) takes the i-th number after the old value.
WITH counter AS (
    UPDATE event_counter SET last = last + cardinality(:topics::text[]) WHERE id = 1
    RETURNING last - cardinality(:topics::text[]) AS base
)
INSERT INTO events ({events:insert})
SELECT base + e.n, e.topic, e.data, :time
  FROM counter, unnest(:topics::text[], :datas!b::bytea[]) WITH ORDINALITY AS e(topic, data, n)
RETURNING seq;

-- name: leases_of_tasks
-- leases_of_task for a matcher pass's jobs at once, in the same order per task.
SELECT {leases}
  FROM leases WHERE task_id = ANY(:task_ids) ORDER BY task_id, attempt, lease_id;
