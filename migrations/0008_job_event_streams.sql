-- Live job event streams: the reaper names the jobs it changed, so their
-- subscribers hear of it (the edge rings each job's hub).
CREATE OR REPLACE FUNCTION cogo.reap(p_max_lost_leases integer DEFAULT 3) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  dead_ids uuid[];
  requeued_ids uuid[];
BEGIN
  WITH expired AS (
    SELECT * FROM cogo.jobs WHERE status = 'running' AND lease_until < now()
    FOR UPDATE SKIP LOCKED
  ), dead_jobs AS (
    UPDATE cogo.jobs j SET status = 'dead', lost_leases = e.lost_leases + 1, finished_at = now(), updated_at = now(),
      error = to_jsonb(CASE WHEN e.attempts >= e.max_attempts THEN 'max_attempts_exceeded' ELSE 'lease_lost_repeatedly' END),
      lease_token = NULL, lease_until = NULL, lease_owner = NULL
    FROM expired e
    WHERE j.id = e.id AND (e.lost_leases + 1 >= p_max_lost_leases OR e.attempts >= e.max_attempts)
    RETURNING j.*
  ), letters AS (
    INSERT INTO cogo.job_dead_letters (job_id, type, executor_id, payload, reason, error, errors, attempts)
    SELECT d.id, d.type, d.executor_id, d.payload, d.error #>> '{}', d.error, d.errors, d.attempts FROM dead_jobs d
    RETURNING job_id
  )
  SELECT coalesce(array_agg(job_id), '{}') INTO dead_ids FROM letters;
  WITH requeued AS (
    UPDATE cogo.jobs SET status = 'queued', lost_leases = lost_leases + 1, next_run_at = now(), updated_at = now(),
      lease_token = NULL, lease_until = NULL, lease_owner = NULL
    WHERE status = 'running' AND lease_until < now()
    RETURNING id
  )
  SELECT coalesce(array_agg(id), '{}') INTO requeued_ids FROM requeued;
  RETURN jsonb_build_object('released', cardinality(requeued_ids), 'deadLettered', cardinality(dead_ids),
                            'jobIds', to_jsonb(dead_ids || requeued_ids));
END
$$;
