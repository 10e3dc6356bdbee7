-- The job queue's state changes, each one SQL function = one transaction,
-- and the triggers that write its event log.
-- Errors the caller must see are raised with SQLSTATE 'PTxyz' (PostgREST
-- answers status xyz) and a snake_case code as the message.

-- The event log is written here and only here, in the statement that
-- changed the jobs, so its order (seq) is the commit order of changes.
-- Statement-level triggers over transition tables: one INSERT per
-- statement, however many jobs a batch claims or completes.
CREATE OR REPLACE FUNCTION cogo.jobs_log_created() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cogo.job_events (job_id, event_type, payload)
  SELECT n.id, 'created', jsonb_build_object('type', n.type, 'executor_id', n.executor_id, 'priority', n.priority)
  FROM new_jobs n;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION cogo.jobs_log_changed() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cogo.job_events (job_id, event_type, payload)
  SELECT e.id, e.kind,
    CASE
      WHEN e.kind = 'claimed' THEN jsonb_build_object('status', e.status, 'attempt', e.attempts,
                                                      'worker_id', e.worker_id, 'lease_until', e.lease_until)
      WHEN e.kind IN ('retry_scheduled', 'lease_expired') THEN jsonb_build_object('status', e.status,
                                      'attempt', e.attempts, 'next_run_at', e.next_run_at, 'error', e.error)
      WHEN e.kind IN ('failed', 'dead_lettered') THEN jsonb_build_object('status', e.status, 'attempt', e.attempts,
                                                                         'error', e.error)
      WHEN e.kind = 'progress' THEN jsonb_build_object('progress', e.progress, 'step', e.current_step)
      -- `from` tells a queued job's cancel (it leaves the queue) from a
      -- running one's: the history's queue depth counts only the first.
      WHEN e.kind = 'cancelled' THEN jsonb_build_object('status', e.status, 'attempt', e.attempts, 'from', e.old_status)
      ELSE jsonb_build_object('status', e.status, 'attempt', e.attempts)
    END
  FROM (
    SELECT n.*, o.status AS old_status,
      CASE
        WHEN n.status IS NOT DISTINCT FROM o.status THEN
          CASE WHEN n.progress IS DISTINCT FROM o.progress OR n.current_step IS DISTINCT FROM o.current_step
               THEN 'progress' END
        WHEN n.status = 'running' THEN 'claimed'
        WHEN n.status = 'succeeded' THEN 'succeeded'
        WHEN n.status = 'failed' THEN 'failed'
        WHEN n.status = 'dead' THEN 'dead_lettered'
        WHEN n.status = 'cancelled' THEN 'cancelled'
        WHEN n.status = 'queued' AND o.status = 'running' AND n.lost_leases > o.lost_leases THEN 'lease_expired'
        WHEN n.status = 'queued' AND o.status = 'running' THEN 'retry_scheduled'
        ELSE 'requeued'
      END AS kind
    FROM new_jobs n JOIN old_jobs o ON o.id = n.id
  ) e
  WHERE e.kind IS NOT NULL
  ORDER BY e.id;
  RETURN NULL;
END
$$;

-- A deleted job's events go with it (the log has no foreign key to
-- cascade: 0005_events_without_foreign_key.sql).
CREATE OR REPLACE FUNCTION cogo.jobs_forget_events() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM cogo.job_events e USING old_jobs o WHERE e.job_id = o.id;
  RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER jobs_log_created AFTER INSERT ON cogo.jobs
  REFERENCING NEW TABLE AS new_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION cogo.jobs_log_created();
CREATE OR REPLACE TRIGGER jobs_log_changed AFTER UPDATE ON cogo.jobs
  REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION cogo.jobs_log_changed();
CREATE OR REPLACE TRIGGER jobs_forget_events AFTER DELETE ON cogo.jobs
  REFERENCING OLD TABLE AS old_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION cogo.jobs_forget_events();

-- A job as the clients read it (collab.yaml Job) plus our additions; the
-- internal bookkeeping columns stay out. STABLE, as to_jsonb of a
-- timestamptz is (it follows TimeZone): so declared, it is inlined into the
-- calling query instead of parsed and planned again on every execution. One
-- `- text[]` copies the object once, where a `-` per key copied it per key.
CREATE OR REPLACE FUNCTION cogo.job_json(j cogo.jobs) RETURNS jsonb
  LANGUAGE sql STABLE AS $$
  SELECT to_jsonb(j) - '{errors,lease_token,lease_owner,backoff_base_ms,backoff_cap_ms,idempotency_scope}'::text[]
$$;

-- Enqueue, idempotent on (p_idempotency_scope, p_idempotency_key): a repeat
-- in the same scope returns the same job with queued = false. A new job
-- rings its executor's claim hub when claims wait there (doorbells). Its signature
-- before scopes (0010) goes first, or it would stay beside this one.
DROP FUNCTION IF EXISTS cogo.enqueue(text, text, jsonb, text, integer, timestamptz, integer, text, integer, integer);
CREATE OR REPLACE FUNCTION cogo.enqueue(
  p_type text, p_executor_id text, p_payload jsonb DEFAULT '{}'::jsonb,
  p_idempotency_key text DEFAULT NULL, p_priority integer DEFAULT 0,
  p_run_at timestamptz DEFAULT NULL, p_max_attempts integer DEFAULT NULL,
  p_owner_id text DEFAULT NULL, p_backoff_base_ms integer DEFAULT NULL,
  p_backoff_cap_ms integer DEFAULT NULL, p_idempotency_scope text DEFAULT '')
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  new_id uuid;
BEGIN
  INSERT INTO cogo.jobs (type, executor_id, payload, idempotency_key, idempotency_scope, priority, next_run_at,
                         max_attempts, owner_id, backoff_base_ms, backoff_cap_ms)
  VALUES (p_type, p_executor_id, coalesce(p_payload, '{}'::jsonb), p_idempotency_key,
          coalesce(p_idempotency_scope, ''), coalesce(p_priority, 0), greatest(coalesce(p_run_at, now()), now()),
          coalesce(p_max_attempts, 5), p_owner_id,
          coalesce(p_backoff_base_ms, 500), coalesce(p_backoff_cap_ms, 60000))
  ON CONFLICT (idempotency_scope, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING id INTO new_id;
  IF new_id IS NOT NULL THEN
    RETURN cogo.with_doorbells(jsonb_build_object('jobId', new_id, 'queued', true),
                               cogo.doorbells('{}', ARRAY[p_executor_id]));
  END IF;
  -- The conflicting insert has committed (ON CONFLICT waited for it).
  SELECT id INTO new_id FROM cogo.jobs
  WHERE idempotency_scope = coalesce(p_idempotency_scope, '') AND idempotency_key = p_idempotency_key;
  RETURN jsonb_build_object('jobId', new_id, 'queued', false);
END
$$;

-- Claims up to p_limit ready jobs of one executor. SKIP LOCKED lets
-- concurrent claimers take disjoint jobs; the attempt is counted here, so a
-- job that kills its worker still runs out of attempts. PL/pgSQL, not SQL:
-- its plan is cached per session instead of made on every call. Generic
-- plans, forced: the parameterised LIMIT makes the generic plan look dearer
-- than a custom one, so the plan cache would otherwise plan every call
-- afresh, for the same index scan. A claimed job with event-stream
-- subscribers carries "watched": true, for the edge to ring its hub (and
-- take the flag out).
CREATE OR REPLACE FUNCTION cogo.claim(
  p_executor_id text, p_worker_id text, p_lease_seconds integer DEFAULT 60,
  p_type_prefix text DEFAULT NULL, p_limit integer DEFAULT 1)
RETURNS SETOF jsonb
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  claimed jsonb[];
  watched jsonb;
BEGIN
  WITH picked AS (
    SELECT id FROM cogo.jobs
    WHERE status = 'queued' AND executor_id = p_executor_id AND next_run_at <= now()
      AND (p_type_prefix IS NULL OR starts_with(type, p_type_prefix))
    ORDER BY priority DESC, next_run_at, created_at
    LIMIT least(greatest(p_limit, 1), 100)
    FOR UPDATE SKIP LOCKED
  ), claimed AS (
    UPDATE cogo.jobs j
    SET status = 'running', attempts = j.attempts + 1, worker_id = p_worker_id,
        lease_owner = p_worker_id, lease_token = gen_random_uuid(),
        lease_until = now() + make_interval(secs => p_lease_seconds),
        started_at = coalesce(j.started_at, now()), updated_at = now()
    FROM picked WHERE j.id = picked.id
    RETURNING j.*
  )
  SELECT array_agg(cogo.job_json(c) || jsonb_build_object('lease_token', c.lease_token)
                   ORDER BY c.priority DESC, c.next_run_at, c.created_at)
  INTO claimed FROM claimed c;
  IF claimed IS NULL THEN
    RETURN;
  END IF;
  watched := cogo.watched(ARRAY(SELECT (c->>'id')::uuid FROM unnest(claimed) c)) -> 'jobs';
  IF watched IS NULL THEN
    RETURN QUERY SELECT c FROM unnest(claimed) WITH ORDINALITY AS t(c, n) ORDER BY n;
  ELSE
    RETURN QUERY SELECT CASE WHEN watched ? (c->>'id') THEN c || '{"watched": true}' ELSE c END
                 FROM unnest(claimed) WITH ORDINALITY AS t(c, n) ORDER BY n;
  END IF;
END
$$;

-- A worker token scoped to one executor touches only that executor's jobs:
-- every lease-checked change takes the scope (NULL: unscoped) and treats a
-- job of another executor as not found, so nothing about it leaks. Their
-- signatures from before scopes (0010) go first.
DROP FUNCTION IF EXISTS cogo.complete(uuid, boolean, jsonb, jsonb, uuid);
DROP FUNCTION IF EXISTS cogo.progress(uuid, uuid, jsonb, text);
DROP FUNCTION IF EXISTS cogo.extend_lease(uuid, uuid, integer);
DROP FUNCTION IF EXISTS cogo.complete_many(jsonb);
DROP FUNCTION IF EXISTS cogo.running_job(uuid, uuid);
DROP FUNCTION IF EXISTS cogo.lock_running(uuid, uuid);

-- Locks a job for a lease-checked change. `problem` is NULL when the job
-- is running under p_lease_token; otherwise it names what is wrong
-- (job_not_found 404; not_running 409 once finished; lease_lost 409 for a
-- token that is not the current lease's). A NULL token
-- (clients that predate lease tokens) is accepted while the job is running.
CREATE OR REPLACE FUNCTION cogo.lock_running(p_job_id uuid, p_lease_token uuid, p_executor_id text,
  OUT job cogo.jobs, OUT problem text, OUT status integer, OUT detail text)
LANGUAGE plpgsql AS $$
BEGIN
  SELECT * INTO job FROM cogo.jobs WHERE id = p_job_id FOR UPDATE;
  IF NOT FOUND OR (p_executor_id IS NOT NULL AND job.executor_id <> p_executor_id) THEN
    job := NULL;
    problem := 'job_not_found'; status := 404; detail := format('no job %s', p_job_id);
  ELSIF job.status IN ('succeeded', 'failed', 'dead', 'cancelled') THEN
    problem := 'not_running'; status := 409; detail := format('job is %s', job.status);
  ELSIF p_lease_token IS NOT NULL AND job.lease_token IS DISTINCT FROM p_lease_token THEN
    problem := 'lease_lost'; status := 409;
    detail := 'the lease token is not the job''s current one: the lease expired or another worker holds the job';
  ELSIF job.status <> 'running' THEN
    problem := 'not_running'; status := 409; detail := format('job is %s', job.status);
  END IF;
END
$$;

-- lock_running for one job, raising its problem as PostgREST status
-- `status` (SQLSTATE 'PTxyz') with the code as the message.
CREATE OR REPLACE FUNCTION cogo.running_job(p_job_id uuid, p_lease_token uuid, p_executor_id text) RETURNS cogo.jobs
LANGUAGE plpgsql AS $$
DECLARE
  l record;
BEGIN
  l := cogo.lock_running(p_job_id, p_lease_token, p_executor_id);
  IF l.problem IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'PT' || l.status, MESSAGE = l.problem, DETAIL = l.detail;
  END IF;
  RETURN l.job;
END
$$;

-- Records the result of a running job that the caller has locked. ok:
-- succeeded. Not ok: a retry after min(cap, base * 2^(attempt-1)) with full
-- jitter, or, after the last attempt, status dead plus a dead letter
-- holding every attempt's error.
CREATE OR REPLACE FUNCTION cogo.finish(j cogo.jobs, p_ok boolean, p_result jsonb, p_error jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  delay_ms double precision;
  all_errors jsonb;
  next_at timestamptz;
BEGIN
  IF p_ok THEN
    UPDATE cogo.jobs SET status = 'succeeded', result = p_result, finished_at = now(), updated_at = now(),
      lease_token = NULL, lease_until = NULL, lease_owner = NULL
    WHERE id = j.id;
    RETURN jsonb_build_object('status', 'succeeded');
  END IF;
  all_errors := j.errors || jsonb_build_array(jsonb_build_object('attempt', j.attempts, 'error', p_error, 'at', now()));
  IF j.cancel_requested THEN
    UPDATE cogo.jobs SET status = 'cancelled', error = p_error, errors = all_errors, finished_at = now(),
      updated_at = now(), lease_token = NULL, lease_until = NULL, lease_owner = NULL
    WHERE id = j.id;
    RETURN jsonb_build_object('status', 'cancelled');
  END IF;
  IF j.attempts >= j.max_attempts THEN
    UPDATE cogo.jobs SET status = 'dead', error = p_error, errors = all_errors, finished_at = now(),
      updated_at = now(), lease_token = NULL, lease_until = NULL, lease_owner = NULL
    WHERE id = j.id;
    INSERT INTO cogo.job_dead_letters (job_id, type, executor_id, payload, reason, error, errors, attempts)
    VALUES (j.id, j.type, j.executor_id, j.payload, 'max_attempts_exceeded', p_error, all_errors, j.attempts);
    RETURN jsonb_build_object('status', 'dead');
  END IF;
  delay_ms := random() * least(j.backoff_cap_ms::double precision,
                               j.backoff_base_ms * power(2::double precision, j.attempts - 1));
  next_at := now() + make_interval(secs => delay_ms / 1000);
  UPDATE cogo.jobs SET status = 'queued', error = p_error, errors = all_errors, next_run_at = next_at,
    updated_at = now(), lease_token = NULL, lease_until = NULL, lease_owner = NULL
  WHERE id = j.id;
  RETURN jsonb_build_object('status', 'queued', 'nextRunAt', next_at);
END
$$;

-- The doorbells after finishing job j with `outcome`: its subscribers,
-- and the claims waiting for its executor when it went back to the queue.
CREATE OR REPLACE FUNCTION cogo.finish_doorbells(j cogo.jobs, outcome jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
  RETURN cogo.doorbells(ARRAY[j.id], CASE WHEN outcome->>'status' = 'queued' THEN ARRAY[j.executor_id] ELSE '{}' END);
END
$$;

-- One job's result, with its doorbells, and the executor and worker that
-- held the job. A success under the current lease, the common case, is one
-- UPDATE; anything else locks the row first and raises what is wrong.
CREATE OR REPLACE FUNCTION cogo.record_result(
  p_job_id uuid, p_ok boolean, p_result jsonb, p_error jsonb, p_lease_token uuid, p_executor_id text,
  OUT outcome jsonb, OUT job_executor text, OUT job_worker text)
LANGUAGE plpgsql AS $$
DECLARE
  j cogo.jobs;
BEGIN
  IF p_ok THEN
    UPDATE cogo.jobs SET status = 'succeeded', result = p_result, finished_at = now(), updated_at = now(),
      lease_token = NULL, lease_until = NULL, lease_owner = NULL
    WHERE id = p_job_id AND status = 'running' AND (p_lease_token IS NULL OR lease_token = p_lease_token)
      AND (p_executor_id IS NULL OR executor_id = p_executor_id)
    RETURNING executor_id, worker_id INTO job_executor, job_worker;
    IF FOUND THEN
      outcome := cogo.with_doorbells('{"status": "succeeded"}', cogo.watched(ARRAY[p_job_id]));
      RETURN;
    END IF;
  END IF;
  j := cogo.running_job(p_job_id, p_lease_token, p_executor_id);
  outcome := cogo.finish(j, p_ok, p_result, p_error);
  outcome := cogo.with_doorbells(outcome, cogo.finish_doorbells(j, outcome));
  job_executor := j.executor_id;
  job_worker := coalesce(j.lease_owner, j.worker_id);
END
$$;

-- task.result for one job.
CREATE OR REPLACE FUNCTION cogo.complete(
  p_job_id uuid, p_ok boolean, p_result jsonb DEFAULT NULL, p_error jsonb DEFAULT NULL,
  p_lease_token uuid DEFAULT NULL, p_executor_id text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
  RETURN (cogo.record_result(p_job_id, p_ok, p_result, p_error, p_lease_token, p_executor_id)).outcome;
END
$$;

-- task.result with `next`: the result, then the next claim for the same
-- executor and worker, in one transaction (one round trip per job). A
-- stale lease raises before anything is claimed.
CREATE OR REPLACE FUNCTION cogo.complete_next(
  p_job_id uuid, p_ok boolean, p_result jsonb DEFAULT NULL, p_error jsonb DEFAULT NULL,
  p_lease_token uuid DEFAULT NULL, p_executor_id text DEFAULT NULL,
  p_next_limit integer DEFAULT 1, p_next_lease_seconds integer DEFAULT 60, p_next_type_prefix text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  recorded record;
  claimed jsonb;
BEGIN
  recorded := cogo.record_result(p_job_id, p_ok, p_result, p_error, p_lease_token, p_executor_id);
  SELECT coalesce(jsonb_agg(c), '[]'::jsonb) INTO claimed
  FROM cogo.claim(recorded.job_executor, recorded.job_worker, p_next_lease_seconds, p_next_type_prefix,
                  p_next_limit) c;
  RETURN recorded.outcome || jsonb_build_object('jobs', claimed);
END
$$;

-- task.result's batch form: {results: one outcome per item, in input
-- order}; a stale item (or one of another executor) fails alone. Successes
-- under a current lease are one UPDATE; the rest go one by one, locked in id
-- order so concurrent batches cannot deadlock.
CREATE OR REPLACE FUNCTION cogo.complete_many(p_results jsonb, p_executor_id text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  item record;
  l record;
  outcome jsonb;
  outcomes jsonb;
  changed uuid[];
  requeued text[] := '{}';
BEGIN
  WITH input AS (
    SELECT ord, (e->>'p_job_id')::uuid AS job_id, nullif(e->'p_result', 'null'::jsonb) AS result,
           (e->>'p_lease_token')::uuid AS token
    FROM jsonb_array_elements(p_results) WITH ORDINALITY AS t(e, ord)
    WHERE (e->>'p_ok')::boolean
  ), done AS (
    UPDATE cogo.jobs j SET status = 'succeeded', result = i.result, finished_at = now(), updated_at = now(),
      lease_token = NULL, lease_until = NULL, lease_owner = NULL
    FROM input i
    WHERE j.id = i.job_id AND j.status = 'running' AND (i.token IS NULL OR j.lease_token = i.token)
      AND (p_executor_id IS NULL OR j.executor_id = p_executor_id)
    RETURNING i.ord, j.id
  )
  SELECT coalesce(jsonb_object_agg(ord::text, jsonb_build_object('jobId', id, 'ok', true, 'status', 'succeeded')),
                  '{}'::jsonb), coalesce(array_agg(id), '{}')
  INTO outcomes, changed FROM done;

  FOR item IN
    SELECT ord, (e->>'p_job_id')::uuid AS job_id, (e->>'p_ok')::boolean AS ok,
           nullif(e->'p_result', 'null'::jsonb) AS result, nullif(e->'p_error', 'null'::jsonb) AS error,
           (e->>'p_lease_token')::uuid AS token
    FROM jsonb_array_elements(p_results) WITH ORDINALITY AS t(e, ord)
    WHERE NOT outcomes ? ord::text
    ORDER BY 2, 1
  LOOP
    l := cogo.lock_running(item.job_id, item.token, p_executor_id);
    IF l.problem IS NOT NULL THEN
      outcome := jsonb_build_object('ok', false, 'error', jsonb_build_object('code', l.problem, 'message', l.detail));
    ELSE
      outcome := jsonb_build_object('ok', true) || cogo.finish(l.job, item.ok, item.result, item.error);
      changed := changed || item.job_id;
      IF outcome->>'status' = 'queued' THEN
        requeued := requeued || (l.job).executor_id;
      END IF;
    END IF;
    outcomes := outcomes || jsonb_build_object(item.ord::text, jsonb_build_object('jobId', item.job_id) || outcome);
  END LOOP;
  RETURN cogo.with_doorbells(
    jsonb_build_object('results', (SELECT coalesce(jsonb_agg(outcomes->(n::text) ORDER BY n), '[]'::jsonb)
                                   FROM generate_series(1, jsonb_array_length(p_results)) AS n)),
    cogo.doorbells(changed, requeued));
END
$$;

-- The batch form with `next`: the results, then the next claim for the
-- executor and worker of the first item that was running under its lease.
-- When no item was, nothing is claimed.
CREATE OR REPLACE FUNCTION cogo.complete_many_next(p_results jsonb, p_executor_id text DEFAULT NULL,
  p_next_limit integer DEFAULT 1, p_next_lease_seconds integer DEFAULT 60, p_next_type_prefix text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  claimer record;
  answer jsonb;
  claimed jsonb := '[]'::jsonb;
BEGIN
  SELECT j.executor_id, coalesce(j.lease_owner, j.worker_id) AS worker_id INTO claimer
  FROM jsonb_array_elements(p_results) WITH ORDINALITY AS t(e, ord)
  JOIN cogo.jobs j ON j.id = (e->>'p_job_id')::uuid
  WHERE j.status = 'running' AND ((e->>'p_lease_token') IS NULL OR j.lease_token = (e->>'p_lease_token')::uuid)
    AND (p_executor_id IS NULL OR j.executor_id = p_executor_id)
  ORDER BY ord LIMIT 1;
  answer := cogo.complete_many(p_results, p_executor_id);
  IF claimer.executor_id IS NOT NULL THEN
    SELECT coalesce(jsonb_agg(c), '[]'::jsonb) INTO claimed
    FROM cogo.claim(claimer.executor_id, claimer.worker_id, p_next_lease_seconds, p_next_type_prefix, p_next_limit) c;
  END IF;
  RETURN answer || jsonb_build_object('jobs', claimed);
END
$$;

-- Progress from the worker holding the lease; answers whether a cancel was
-- requested so the worker can stop.
CREATE OR REPLACE FUNCTION cogo.progress(
  p_job_id uuid, p_lease_token uuid, p_progress jsonb DEFAULT NULL, p_step text DEFAULT NULL,
  p_executor_id text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  j cogo.jobs;
BEGIN
  j := cogo.running_job(p_job_id, p_lease_token, p_executor_id);
  UPDATE cogo.jobs SET progress = coalesce(p_progress, progress), current_step = coalesce(p_step, current_step),
    updated_at = now()
  WHERE id = p_job_id;
  RETURN cogo.with_doorbells(jsonb_build_object('ok', true, 'cancelRequested', j.cancel_requested),
                             cogo.watched(ARRAY[p_job_id]));
END
$$;

-- Extends the lease (the worker's heartbeat for one job).
CREATE OR REPLACE FUNCTION cogo.extend_lease(p_job_id uuid, p_lease_token uuid, p_lease_seconds integer,
  p_executor_id text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  j cogo.jobs;
  until timestamptz := now() + make_interval(secs => p_lease_seconds);
BEGIN
  j := cogo.running_job(p_job_id, p_lease_token, p_executor_id);
  UPDATE cogo.jobs SET lease_until = until, updated_at = now() WHERE id = p_job_id;
  RETURN jsonb_build_object('ok', true, 'leaseUntil', until, 'cancelRequested', j.cancel_requested);
END
$$;

-- Cancels a queued job at once; a running one gets a cancel request that
-- its worker sees on the next progress or heartbeat.
-- With p_owner_id, only that owner's job is found.
CREATE OR REPLACE FUNCTION cogo.cancel(p_job_id uuid, p_owner_id text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  j cogo.jobs;
BEGIN
  SELECT * INTO j FROM cogo.jobs WHERE id = p_job_id FOR UPDATE;
  IF NOT FOUND OR (p_owner_id IS NOT NULL AND j.owner_id IS DISTINCT FROM p_owner_id) THEN
    RAISE SQLSTATE 'PT404' USING MESSAGE = 'job_not_found', DETAIL = format('no job %s', p_job_id);
  END IF;
  IF j.status = 'queued' THEN
    UPDATE cogo.jobs SET status = 'cancelled', finished_at = now(), updated_at = now() WHERE id = j.id;
    RETURN cogo.with_doorbells(jsonb_build_object('status', 'cancelled', 'cancelRequested', false),
                               cogo.watched(ARRAY[j.id]));
  ELSIF j.status = 'running' THEN
    UPDATE cogo.jobs SET cancel_requested = true, updated_at = now() WHERE id = j.id;
    RETURN jsonb_build_object('status', 'running', 'cancelRequested', true);
  END IF;
  RAISE SQLSTATE 'PT409' USING MESSAGE = 'already_finished', DETAIL = format('job is %s', j.status);
END
$$;

-- Expired leases go back to the queue (lost_leases + 1), or to the dead
-- letters when attempts are used up or leases were lost too often; a job
-- whose cancel was requested is cancelled instead, as its worker's
-- acknowledgement would have done. Its doorbells name the changed jobs
-- that have subscribers and the executors of requeued jobs that have claims
-- waiting.
CREATE OR REPLACE FUNCTION cogo.reap(p_max_lost_leases integer DEFAULT 3) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  cancelled_ids uuid[];
  dead_ids uuid[];
  requeued_ids uuid[];
  requeued_executors text[];
BEGIN
  WITH cancelled AS (
    UPDATE cogo.jobs SET status = 'cancelled', lost_leases = lost_leases + 1, finished_at = now(),
      updated_at = now(), lease_token = NULL, lease_until = NULL, lease_owner = NULL
    WHERE status = 'running' AND lease_until < now() AND cancel_requested
    RETURNING id
  )
  SELECT coalesce(array_agg(id), '{}') INTO cancelled_ids FROM cancelled;
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
    RETURNING id, executor_id
  )
  SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(DISTINCT executor_id), '{}')
  INTO requeued_ids, requeued_executors FROM requeued;
  RETURN cogo.with_doorbells(
    jsonb_build_object('released', cardinality(requeued_ids), 'deadLettered', cardinality(dead_ids),
                       'cancelled', cardinality(cancelled_ids)),
    cogo.doorbells(cancelled_ids || dead_ids || requeued_ids, requeued_executors));
END
$$;

-- A worker's presence row belongs to the caller that first wrote it: another
-- caller's heartbeat for the same worker id is refused (403), so no one can
-- overwrite or fake another worker's presence. The platform (p_principal
-- NULL) may write any row and never takes one over. The signature from
-- before owned rows (0010) goes first.
DROP FUNCTION IF EXISTS cogo.upsert_heartbeat(text, text, text, text, text, integer, integer, jsonb);
CREATE OR REPLACE FUNCTION cogo.upsert_heartbeat(
  p_worker_id text, p_executor_id text, p_status text, p_agent_id text DEFAULT NULL,
  p_version text DEFAULT NULL, p_running integer DEFAULT 0, p_capacity integer DEFAULT NULL,
  p_metadata jsonb DEFAULT '{}'::jsonb, p_principal text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  answer jsonb;
BEGIN
  INSERT INTO cogo.worker_heartbeats_v2 AS h
    (worker_id, executor_id, agent_id, status, version, running, capacity, metadata, last_seen_at, principal)
  VALUES (p_worker_id, p_executor_id, p_agent_id, p_status, p_version, coalesce(p_running, 0), p_capacity,
          coalesce(p_metadata, '{}'::jsonb), now(), p_principal)
  ON CONFLICT (worker_id) DO UPDATE SET executor_id = excluded.executor_id, agent_id = excluded.agent_id,
    status = excluded.status, version = excluded.version, running = excluded.running,
    capacity = excluded.capacity, metadata = excluded.metadata, last_seen_at = now(),
    principal = coalesce(h.principal, excluded.principal)
  WHERE p_principal IS NULL OR h.principal IS NULL OR h.principal = p_principal
  RETURNING jsonb_build_object('ok', true, 'workerId', h.worker_id, 'lastSeenAt', h.last_seen_at) INTO answer;
  IF answer IS NULL THEN
    RAISE SQLSTATE 'PT403' USING MESSAGE = 'worker_forbidden',
      DETAIL = format('worker %s reports under another credential', p_worker_id);
  END IF;
  RETURN answer;
END
$$;

-- Only the platform calls these; the edge checks who may act on whose behalf.
GRANT EXECUTE ON FUNCTION
  cogo.enqueue(text, text, jsonb, text, integer, timestamptz, integer, text, integer, integer, text),
  cogo.claim(text, text, integer, text, integer), cogo.lock_running(uuid, uuid, text),
  cogo.running_job(uuid, uuid, text), cogo.finish(cogo.jobs, boolean, jsonb, jsonb),
  cogo.complete(uuid, boolean, jsonb, jsonb, uuid, text), cogo.complete_many(jsonb, text),
  cogo.finish_doorbells(cogo.jobs, jsonb),
  cogo.record_result(uuid, boolean, jsonb, jsonb, uuid, text),
  cogo.complete_next(uuid, boolean, jsonb, jsonb, uuid, text, integer, integer, text),
  cogo.complete_many_next(jsonb, text, integer, integer, text),
  cogo.progress(uuid, uuid, jsonb, text, text), cogo.extend_lease(uuid, uuid, integer, text),
  cogo.cancel(uuid, text), cogo.reap(integer),
  cogo.upsert_heartbeat(text, text, text, text, text, integer, integer, jsonb, text)
  TO service_role;
-- A user reads their own jobs with their own JWT (row level security applies).
GRANT EXECUTE ON FUNCTION cogo.job_json(cogo.jobs) TO authenticated, service_role;
