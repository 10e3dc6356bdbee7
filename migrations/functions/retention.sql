-- Retention: finished jobs are deleted once they are old enough, with what
-- hangs off them (events, dead letters, artifact rows), in bounded batches.
-- The cron calls the sweep until a batch comes back short; the answer names
-- the deleted artifacts' objects, which the cron then deletes from the
-- bucket (the database cannot reach it).

-- One batch: at most p_batch jobs, the oldest finished first. Succeeded and
-- cancelled jobs go p_finished_hours after they finished, failed and dead
-- ones (with their dead letters) p_failed_hours after; NULL keeps that kind
-- for ever. Queued and running jobs are never touched. Rows another
-- transaction holds (a job being changed, a letter being replayed) are
-- skipped, left for a later sweep, so the sweep never waits on live work.
-- A job a dead letter names as its replay (retried_job_id) stays as long as
-- the letter does, so the letter's link and "one replay per letter" hold.
CREATE OR REPLACE FUNCTION cogo.retention_sweep(p_finished_hours integer, p_failed_hours integer, p_batch integer)
RETURNS jsonb
  LANGUAGE plpgsql AS $$
DECLARE
  ids uuid[] := '{}';
  jobs bigint;
  events bigint;
  letters bigint;
  objects jsonb;
BEGIN
  IF p_batch IS NULL OR p_batch NOT BETWEEN 1 AND 10000 OR p_finished_hours < 1 OR p_failed_hours < 1 THEN
    RAISE SQLSTATE 'PT400' USING MESSAGE = 'invalid_argument',
      DETAIL = 'p_batch must be 1..10000; p_finished_hours and p_failed_hours at least 1, or null to keep for ever';
  END IF;
  IF p_finished_hours IS NOT NULL THEN
    ids := ARRAY(
      SELECT j.id FROM cogo.jobs j
      WHERE j.status IN ('succeeded', 'cancelled')
        AND j.finished_at < now() - make_interval(hours => p_finished_hours)
        AND NOT EXISTS (SELECT 1 FROM cogo.job_dead_letters d WHERE d.retried_job_id = j.id)
      ORDER BY j.finished_at
      LIMIT p_batch
      FOR UPDATE OF j SKIP LOCKED);
  END IF;
  IF p_failed_hours IS NOT NULL AND cardinality(ids) < p_batch THEN
    ids := ids || ARRAY(
      SELECT j.id FROM cogo.jobs j
      WHERE j.status IN ('failed', 'dead')
        AND j.finished_at < now() - make_interval(hours => p_failed_hours)
        AND NOT EXISTS (SELECT 1 FROM cogo.job_dead_letters d WHERE d.retried_job_id = j.id)
      ORDER BY j.finished_at
      LIMIT p_batch - cardinality(ids)
      FOR UPDATE OF j SKIP LOCKED);
    WITH mine AS (SELECT id FROM cogo.job_dead_letters WHERE job_id = ANY (ids) FOR UPDATE SKIP LOCKED)
    DELETE FROM cogo.job_dead_letters d USING mine WHERE d.id = mine.id;
    GET DIAGNOSTICS letters = ROW_COUNT;
    -- A letter still there is locked by a replay in progress: its job stays.
    ids := ARRAY(SELECT unnest(ids) EXCEPT SELECT job_id FROM cogo.job_dead_letters WHERE job_id = ANY (ids));
  END IF;
  -- Deleted here rather than by the cascades, to count them: one statement
  -- each, through the indexes on job_id.
  DELETE FROM cogo.job_events WHERE job_id = ANY (ids);
  GET DIAGNOSTICS events = ROW_COUNT;
  WITH gone AS (DELETE FROM cogo.artifacts WHERE job_id = ANY (ids) RETURNING bucket, path)
  SELECT coalesce(jsonb_agg(jsonb_build_object('bucket', bucket, 'path', path)), '[]'::jsonb) INTO objects FROM gone;
  DELETE FROM cogo.jobs WHERE id = ANY (ids);
  GET DIAGNOSTICS jobs = ROW_COUNT;
  RETURN jsonb_build_object('jobs', jobs, 'events', events, 'deadLetters', coalesce(letters, 0), 'artifacts', objects);
END
$$;

GRANT EXECUTE ON FUNCTION cogo.retention_sweep(integer, integer, integer) TO service_role;
