-- Listeners (0002_listeners.sql): event-stream subscribers of a job, and
-- long-polling claims of an executor. A change rings the edge's hubs only
-- for what someone listens to; these functions keep that registry and tell
-- the changing functions whom to ring, without ever missing a listener that
-- registers while a change is in flight.

-- Two-key advisory lock space of an executor's waiting claims.
CREATE OR REPLACE FUNCTION cogo.waiters_lock_key(p_executor_id text) RETURNS bigint
  LANGUAGE sql IMMUTABLE AS $$
  SELECT (hashtext('cogo.claim_waiters')::bigint << 32) | (hashtext(p_executor_id)::bigint & 4294967295)
$$;

-- Which of p_job_ids have live subscribers, as doorbells ({jobs}), or NULL.
-- Called after the change, as a statement of its own (see doorbells).
CREATE OR REPLACE FUNCTION cogo.watched(p_job_ids uuid[]) RETURNS jsonb
  LANGUAGE plpgsql STABLE AS $$
DECLARE
  jobs jsonb;
BEGIN
  SELECT jsonb_agg(job_id) INTO jobs FROM cogo.job_watchers
  WHERE job_id = ANY(p_job_ids) AND watched_until > now();
  RETURN CASE WHEN jobs IS NOT NULL THEN jsonb_build_object('jobs', jobs) END;
END
$$;

-- What the edge must ring after a change to p_job_ids (watched jobs) that
-- may have made jobs of p_executor_ids ready (executors with waiting
-- claims); NULL when nobody listens. Called after the change, while the
-- caller holds the changed jobs' row locks. Each lookup is a statement of
-- its own, so it sees every registration committed before it started:
-- - a job's watcher locks the job row FOR SHARE before registering
--   (watch_job), so it either waited for this change to commit (and its
--   first read sees it) or committed first (and is seen here);
-- - a claim hub takes its executor's lock exclusively to register
--   (claim_waiting); the shared lock taken here makes it either wait for
--   this transaction (its claim then sees the ready job) or commit first
--   (and be seen here).
CREATE OR REPLACE FUNCTION cogo.doorbells(p_job_ids uuid[], p_executor_ids text[] DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  jobs jsonb := cogo.watched(p_job_ids);
  executors jsonb;
BEGIN
  IF cardinality(p_executor_ids) > 0 THEN
    PERFORM pg_advisory_xact_lock_shared(cogo.waiters_lock_key(e))
    FROM (SELECT DISTINCT e FROM unnest(p_executor_ids) e ORDER BY e) ordered;
    SELECT jsonb_agg(executor_id) INTO executors FROM cogo.claim_waiters
    WHERE executor_id = ANY(p_executor_ids) AND waiting_until > now();
  END IF;
  IF executors IS NULL THEN
    RETURN jobs;
  END IF;
  RETURN coalesce(jobs, '{}') || jsonb_build_object('executors', executors);
END
$$;

-- p_answer with the doorbells to ring, if any, under "doorbells" (the edge
-- takes them out before answering).
CREATE OR REPLACE FUNCTION cogo.with_doorbells(p_answer jsonb, p_doorbells jsonb) RETURNS jsonb
  LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN CASE WHEN p_doorbells IS NULL THEN p_answer ELSE p_answer || jsonb_build_object('doorbells', p_doorbells) END;
END
$$;

-- Both sets of doorbells, each name once.
CREATE OR REPLACE FUNCTION cogo.merge_doorbells(a jsonb, b jsonb) RETURNS jsonb
  LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE jsonb_strip_nulls(jsonb_build_object(
    'jobs', (SELECT jsonb_agg(DISTINCT x)
             FROM jsonb_array_elements(coalesce(a->'jobs', '[]') || coalesce(b->'jobs', '[]')) x),
    'executors', (SELECT jsonb_agg(DISTINCT x)
                  FROM jsonb_array_elements(coalesce(a->'executors', '[]') || coalesce(b->'executors', '[]')) x)))
  END
$$;

-- A job hub registers (and renews) its job's subscribers for p_seconds.
-- FOR SHARE waits for a change in flight on the job to commit, so the
-- hub's next read sees it; a change that comes after sees the watcher.
CREATE OR REPLACE FUNCTION cogo.watch_job(p_job_id uuid, p_seconds integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  until timestamptz := now() + make_interval(secs => p_seconds);
BEGIN
  PERFORM 1 FROM cogo.jobs WHERE id = p_job_id FOR SHARE;
  INSERT INTO cogo.job_watchers AS w (job_id, watched_until) VALUES (p_job_id, until)
  ON CONFLICT (job_id) DO UPDATE SET watched_until = greatest(w.watched_until, excluded.watched_until);
  RETURN jsonb_build_object('watchedUntil', until);
END
$$;

-- A claim hub's claim for one waiting worker: registers the executor's
-- waiters for p_wait_seconds first when asked (in the same transaction, so
-- no job becoming ready in between is missed: see doorbells), then claims.
-- With nothing claimed, dueAt is when the earliest job of the executor (and
-- type prefix) scheduled for later comes due, so the hub wakes then.
CREATE OR REPLACE FUNCTION cogo.claim_waiting(
  p_executor_id text, p_worker_id text, p_lease_seconds integer DEFAULT 60,
  p_type_prefix text DEFAULT NULL, p_limit integer DEFAULT 1, p_wait_seconds integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  claimed jsonb;
  due timestamptz;
BEGIN
  IF p_wait_seconds IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock(cogo.waiters_lock_key(p_executor_id));
    INSERT INTO cogo.claim_waiters AS w (executor_id, waiting_until)
    VALUES (p_executor_id, now() + make_interval(secs => p_wait_seconds))
    ON CONFLICT (executor_id) DO UPDATE SET waiting_until = greatest(w.waiting_until, excluded.waiting_until);
  END IF;
  SELECT coalesce(jsonb_agg(c), '[]'::jsonb) INTO claimed
  FROM cogo.claim(p_executor_id, p_worker_id, p_lease_seconds, p_type_prefix, p_limit) c;
  IF jsonb_array_length(claimed) = 0 THEN
    SELECT min(next_run_at) INTO due FROM cogo.jobs
    WHERE status = 'queued' AND executor_id = p_executor_id
      AND (p_type_prefix IS NULL OR starts_with(type, p_type_prefix));
  END IF;
  RETURN jsonb_strip_nulls(jsonb_build_object('jobs', claimed, 'dueAt', due));
END
$$;

-- Lapsed registrations, for the cron.
CREATE OR REPLACE FUNCTION cogo.listeners_sweep() RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  watchers integer;
  waiters integer;
BEGIN
  DELETE FROM cogo.job_watchers WHERE watched_until < now() - interval '1 minute';
  GET DIAGNOSTICS watchers = ROW_COUNT;
  DELETE FROM cogo.claim_waiters WHERE waiting_until < now() - interval '1 minute';
  GET DIAGNOSTICS waiters = ROW_COUNT;
  RETURN jsonb_build_object('watchers', watchers, 'waiters', waiters);
END
$$;

GRANT EXECUTE ON FUNCTION cogo.waiters_lock_key(text), cogo.watched(uuid[]), cogo.doorbells(uuid[], text[]),
  cogo.with_doorbells(jsonb, jsonb), cogo.watch_job(uuid, integer), cogo.merge_doorbells(jsonb, jsonb),
  cogo.claim_waiting(text, text, integer, text, integer, integer), cogo.listeners_sweep()
  TO service_role;
