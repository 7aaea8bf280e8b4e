-- SQLite's own queries (the common ones are in queries.sql): its single-writer paths (one statement
-- per row where PostgreSQL runs a data-modifying WITH or a bulk form), sqlite_master, INDEXED BY, json_each.

-- name: insert_transition
INSERT INTO job_transitions ({job_transitions:insert})
VALUES (:task_id, :from_status, :to_status, :reason, :height, :time);

-- name: move_job
-- Guarded move: only a job still in :from_status moves; no row changed means another writer moved it first.
UPDATE jobs SET status = :to_status WHERE task_id = :task_id AND status = :from_status;

-- name: insert_proof_inclusion
INSERT INTO proof_inclusions ({proof_inclusions:insert})
VALUES (:task_id, :proof_id, :provider_id, :height, :tx_index, :tx_hash, :producer)
ON CONFLICT (task_id) DO NOTHING;

-- name: proof_inclusion
SELECT {proof_inclusions}
  FROM proof_inclusions WHERE task_id = :task_id;

-- name: has_schema_version
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version';

-- name: touch_provider
-- A heartbeat's narrow update: not the profile (the registry version stays) nor the status (no transition).
UPDATE providers SET last_heartbeat_at = :now, updated_at = :now WHERE provider_id = :provider_id;

-- name: add_heartbeat
INSERT INTO heartbeats (provider_id, slot) VALUES (:provider_id, :slot) ON CONFLICT DO NOTHING;

-- name: ready_jobs
-- The matcher's order: tier, then priority_key = fee_per_unit - max_units_mu / 1000 - 10 * enqueue_height (a
-- generated column), then enqueue height and task_id. `now` is a parameter: no clock in SQL. The partial index
-- jobs_ready is in this order: without INDEXED BY the planner may take jobs_by_status and sort every queued job.
SELECT {jobs}
  FROM jobs INDEXED BY jobs_ready
 WHERE status = 'QUEUED' AND not_before <= :now
 ORDER BY tier DESC, priority_key DESC, enqueue_height, task_id
 LIMIT :limit;

-- name: lease_job
-- Guarded QUEUED -> LEASED: no row changed means the job moved or is not ready yet.
UPDATE jobs SET status = 'LEASED' WHERE task_id = :task_id AND status = 'QUEUED' AND not_before <= :time;

-- name: insert_lease
INSERT INTO leases ({leases:insert})
VALUES (:lease_id, :task_id, :provider_id, :attempt, :granted_at, :expires_at, :status, :epoch, :ended_at,
        :grant_sig);

-- name: extend_leases
-- A heartbeat extends the provider's live, unexpired leases; it never shortens one nor revives a dead one.
UPDATE leases SET expires_at = :expires_at
 WHERE provider_id = :provider_id AND status = 'LIVE' AND expires_at > :now AND expires_at < :expires_at;

-- name: insert_result
INSERT INTO results ({results:insert})
VALUES (:task_id, :proof_id, :kind, :output_digest, :units_mu, :qos, :block_height, :tx_index, :miner_id,
        :provider_id)
ON CONFLICT (task_id) DO NOTHING;

-- name: next_event_seq
-- Gapless: the counter moves in the appending transaction and rolls back with it.
UPDATE event_counter SET last = last + 1 WHERE id = 1 RETURNING last;

-- name: insert_event
INSERT INTO events ({events:insert}) VALUES (:seq, :topic, :data, :time);

-- name: leases_of_tasks
-- leases_of_task for a matcher pass's jobs at once, in the same order per task. SQLite binds no array: the code
-- widens the one placeholder to one "?" per task id (at most _IN_CHUNK), the ids bound by position.
SELECT {leases}
  FROM leases WHERE task_id IN (?) ORDER BY task_id, attempt, lease_id;

-- name: take_event_seqs
-- append_events: the counter moves by the number of events at once; they take the :n numbers up to `last`.
UPDATE event_counter SET last = last + :n WHERE id = 1 RETURNING last;

-- name: events_since_topics
-- :topics is a JSON array of topic names.
SELECT {events} FROM events
 WHERE seq > :seq AND topic IN (SELECT value FROM json_each(:topics))
 ORDER BY seq LIMIT :limit;
