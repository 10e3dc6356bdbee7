-- Tenancy: every name a caller sends is resolved within that caller's scope
-- before anything is read or written (DESIGN.md section 7).

-- Job idempotency keys are unique per scope, not globally: the edge passes
-- "<endpoint>|<caller>" for keys a caller chooses, and keys the platform
-- derives live in scopes starting with "platform|", which no caller id can
-- produce (caller ids start with a role name). Older rows keep scope ''.
ALTER TABLE cogo.jobs ADD COLUMN idempotency_scope text NOT NULL DEFAULT '';
ALTER TABLE cogo.jobs DROP CONSTRAINT jobs_idempotency_key_key;
CREATE UNIQUE INDEX jobs_idempotency_idx ON cogo.jobs (idempotency_scope, idempotency_key);

CREATE OR REPLACE FUNCTION cogo.job_json(j cogo.jobs) RETURNS jsonb
  LANGUAGE sql IMMUTABLE AS $$
  SELECT to_jsonb(j) - 'errors' - 'lease_token' - 'lease_owner' - 'backoff_base_ms' - 'backoff_cap_ms'
         - 'idempotency_scope'
$$;

DROP FUNCTION cogo.enqueue(text, text, jsonb, text, integer, timestamptz, integer, text, integer, integer);
-- Enqueue, idempotent on (p_idempotency_scope, p_idempotency_key): a repeat
-- in the same scope returns the same job with queued = false.
CREATE FUNCTION cogo.enqueue(
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
  ON CONFLICT (idempotency_scope, idempotency_key) DO NOTHING
  RETURNING id INTO new_id;
  IF new_id IS NOT NULL THEN
    RETURN jsonb_build_object('jobId', new_id, 'queued', true);
  END IF;
  -- The conflicting insert has committed (ON CONFLICT waited for it).
  SELECT id INTO new_id FROM cogo.jobs
  WHERE idempotency_scope = coalesce(p_idempotency_scope, '') AND idempotency_key = p_idempotency_key;
  RETURN jsonb_build_object('jobId', new_id, 'queued', false);
END
$$;

-- A dead letter's replay lives in the platform's own scope, so no caller
-- can take it by assigning with the same key first.
CREATE OR REPLACE FUNCTION cogo.retry_letter(d cogo.job_dead_letters) RETURNS jsonb
  LANGUAGE plpgsql AS $$
DECLARE
  j cogo.jobs;
  outcome jsonb;
BEGIN
  IF d.retried_job_id IS NOT NULL THEN
    RETURN jsonb_build_object('dlqId', d.id, 'deadJobId', d.job_id, 'jobId', d.retried_job_id, 'retried', false);
  END IF;
  SELECT * INTO j FROM cogo.jobs WHERE id = d.job_id;
  outcome := cogo.enqueue(d.type, d.executor_id, d.payload, 'dlq:' || d.job_id, j.priority, NULL,
                          j.max_attempts, j.owner_id, j.backoff_base_ms, j.backoff_cap_ms, 'platform|dlq');
  UPDATE cogo.job_dead_letters
  SET retries = retries + 1, retried_at = now(), retried_job_id = (outcome ->> 'jobId')::uuid
  WHERE id = d.id;
  RETURN jsonb_build_object('dlqId', d.id, 'deadJobId', d.job_id, 'jobId', outcome -> 'jobId', 'retried', true);
END
$$;

-- A worker token scoped to one executor touches only that executor's jobs:
-- every lease-checked change takes the scope (NULL: unscoped) and treats a
-- job of another executor as not found, so nothing about it leaks.
DROP FUNCTION cogo.artifact_upload_grant(uuid, uuid);
DROP FUNCTION cogo.complete(uuid, boolean, jsonb, jsonb, uuid);
DROP FUNCTION cogo.progress(uuid, uuid, jsonb, text);
DROP FUNCTION cogo.extend_lease(uuid, uuid, integer);
DROP FUNCTION cogo.complete_many(jsonb);
DROP FUNCTION cogo.running_job(uuid, uuid);
DROP FUNCTION cogo.lock_running(uuid, uuid);

CREATE FUNCTION cogo.lock_running(p_job_id uuid, p_lease_token uuid, p_executor_id text,
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

CREATE FUNCTION cogo.running_job(p_job_id uuid, p_lease_token uuid, p_executor_id text) RETURNS cogo.jobs
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

CREATE FUNCTION cogo.complete(
  p_job_id uuid, p_ok boolean, p_result jsonb DEFAULT NULL, p_error jsonb DEFAULT NULL,
  p_lease_token uuid DEFAULT NULL, p_executor_id text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  j cogo.jobs;
BEGIN
  j := cogo.running_job(p_job_id, p_lease_token, p_executor_id);
  RETURN cogo.finish(j, p_ok, p_result, p_error);
END
$$;

-- task.result's batch form: one outcome per item, in input order; a stale
-- item (or one of another executor) fails alone. Successes under a current
-- lease are one UPDATE; the rest go one by one, locked in id order so
-- concurrent batches cannot deadlock.
CREATE FUNCTION cogo.complete_many(p_results jsonb, p_executor_id text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  item record;
  l record;
  outcome jsonb;
  outcomes jsonb;
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
                  '{}'::jsonb)
  INTO outcomes FROM done;

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
    END IF;
    outcomes := outcomes || jsonb_build_object(item.ord::text, jsonb_build_object('jobId', item.job_id) || outcome);
  END LOOP;
  RETURN (SELECT coalesce(jsonb_agg(outcomes->(n::text) ORDER BY n), '[]'::jsonb)
          FROM generate_series(1, jsonb_array_length(p_results)) AS n);
END
$$;

CREATE FUNCTION cogo.progress(
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
  RETURN jsonb_build_object('ok', true, 'cancelRequested', j.cancel_requested);
END
$$;

CREATE FUNCTION cogo.extend_lease(p_job_id uuid, p_lease_token uuid, p_lease_seconds integer,
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

-- The job an upload link is asked for (or an upload is made to), when the
-- caller holds its current lease.
CREATE FUNCTION cogo.artifact_upload_grant(p_job_id uuid, p_lease_token uuid, p_executor_id text DEFAULT NULL)
RETURNS jsonb
  LANGUAGE plpgsql AS $$
DECLARE
  j cogo.jobs := cogo.running_job(p_job_id, p_lease_token, p_executor_id);
BEGIN
  RETURN jsonb_build_object('jobId', j.id);
END
$$;

-- An upload recorded only while its link's lease is still the job's
-- current one: a link outlives neither the job nor the lease it was made for.
DROP FUNCTION cogo.artifact_record(uuid, text, text, text, bigint, text, text);
CREATE FUNCTION cogo.artifact_record(
  p_job_id uuid, p_lease_token uuid, p_bucket text, p_path text, p_name text, p_size bigint, p_mime text,
  p_sha256 text)
RETURNS jsonb
  LANGUAGE plpgsql AS $$
DECLARE
  j cogo.jobs := cogo.running_job(p_job_id, p_lease_token, NULL);
  recorded jsonb;
BEGIN
  INSERT INTO cogo.artifacts AS a (job_id, bucket, path, name, size, mime, sha256)
  VALUES (j.id, p_bucket, p_path, p_name, p_size, p_mime, p_sha256)
  ON CONFLICT (bucket, path) DO UPDATE
    SET size = excluded.size, mime = excluded.mime, sha256 = excluded.sha256, created_at = now()
  RETURNING cogo.artifact_json(a) INTO recorded;
  RETURN recorded;
END
$$;

-- A worker's presence row belongs to the caller that first wrote it: another
-- caller's heartbeat for the same worker id is refused (403), so no one can
-- overwrite or fake another worker's presence. The platform (p_principal
-- NULL) may write any row and never takes one over.
ALTER TABLE cogo.worker_heartbeats_v2 ADD COLUMN principal text;
DROP FUNCTION cogo.upsert_heartbeat(text, text, text, text, text, integer, integer, jsonb);
CREATE FUNCTION cogo.upsert_heartbeat(
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

-- Idempotency-Key records: a request in flight holds its key only for a
-- short lease (p_lease_seconds), so one that crashed before finishing
-- frees its key for a retry; a finished one is kept for p_ttl_seconds.
DROP FUNCTION cogo.idempotency_begin(text, text, text, text, integer);
CREATE FUNCTION cogo.idempotency_begin(
  p_principal text, p_route text, p_key text, p_request_hash text, p_lease_seconds integer)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  existing cogo.idempotency_keys;
BEGIN
  DELETE FROM cogo.idempotency_keys
  WHERE principal = p_principal AND route = p_route AND key = p_key AND expires_at < now();
  INSERT INTO cogo.idempotency_keys (key, principal, route, request_hash, expires_at)
  VALUES (p_key, p_principal, p_route, p_request_hash, now() + make_interval(secs => p_lease_seconds))
  ON CONFLICT DO NOTHING;
  IF FOUND THEN
    RETURN jsonb_build_object('state', 'started');
  END IF;
  SELECT * INTO existing FROM cogo.idempotency_keys
  WHERE principal = p_principal AND route = p_route AND key = p_key;
  IF existing.request_hash <> p_request_hash THEN
    RETURN jsonb_build_object('state', 'mismatch');
  ELSIF existing.state = 'in_flight' THEN
    RETURN jsonb_build_object('state', 'in_flight',
      'retryAfter', greatest(1, ceil(extract(epoch FROM existing.expires_at - now())))::integer);
  END IF;
  RETURN jsonb_build_object('state', 'done', 'status', existing.response_status, 'body', existing.response_body);
END
$$;

DROP FUNCTION cogo.idempotency_finish(text, text, text, integer, jsonb);
CREATE FUNCTION cogo.idempotency_finish(
  p_principal text, p_route text, p_key text, p_status integer, p_body jsonb, p_ttl_seconds integer)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF p_status IS NULL THEN
    DELETE FROM cogo.idempotency_keys WHERE principal = p_principal AND route = p_route AND key = p_key;
  ELSE
    UPDATE cogo.idempotency_keys SET state = 'done', response_status = p_status, response_body = p_body,
      expires_at = now() + make_interval(secs => p_ttl_seconds)
    WHERE principal = p_principal AND route = p_route AND key = p_key;
  END IF;
END
$$;

GRANT EXECUTE ON FUNCTION
  cogo.enqueue(text, text, jsonb, text, integer, timestamptz, integer, text, integer, integer, text),
  cogo.lock_running(uuid, uuid, text), cogo.running_job(uuid, uuid, text),
  cogo.complete(uuid, boolean, jsonb, jsonb, uuid, text), cogo.complete_many(jsonb, text),
  cogo.progress(uuid, uuid, jsonb, text, text), cogo.extend_lease(uuid, uuid, integer, text),
  cogo.artifact_upload_grant(uuid, uuid, text),
  cogo.artifact_record(uuid, uuid, text, text, text, bigint, text, text),
  cogo.upsert_heartbeat(text, text, text, text, text, integer, integer, jsonb, text),
  cogo.idempotency_begin(text, text, text, text, integer),
  cogo.idempotency_finish(text, text, text, integer, jsonb, integer)
  TO service_role;
