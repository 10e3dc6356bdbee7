-- What dashboards, operators and clients read. Reads on behalf of a user
-- run under the user's own JWT, so the row level security policies decide
-- what they see (someone else's job is simply not found); the platform
-- (service_role) reads everything. Each read is one function: one round
-- trip. Listings return {items, next}: `next` is the sort key of the last
-- item when more rows follow, and the edge turns it into an opaque cursor.

-- Files a job produced, stored in a bucket.
CREATE TABLE cogo.artifacts (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  job_id     uuid NOT NULL REFERENCES cogo.jobs (id) ON DELETE CASCADE,
  bucket     text NOT NULL DEFAULT 'artifacts',
  path       text NOT NULL,
  name       text NOT NULL,
  size       bigint CHECK (size >= 0),
  mime       text,
  sha256     text,
  url        text,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (bucket, path)
);
CREATE INDEX artifacts_job_idx ON cogo.artifacts (job_id, created_at, id);
ALTER TABLE cogo.artifacts ENABLE ROW LEVEL SECURITY;
CREATE POLICY artifacts_owner_reads ON cogo.artifacts FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM cogo.jobs j WHERE j.id = job_id));
GRANT SELECT ON cogo.artifacts TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON cogo.artifacts TO service_role;

-- A user's listing walks their own jobs newest first, with the same
-- tie-break as everyone else's.
DROP INDEX cogo.jobs_owner_idx;
CREATE INDEX jobs_owner_idx ON cogo.jobs (owner_id, created_at DESC, id DESC) WHERE owner_id IS NOT NULL;
-- Metrics: the recently finished, and the oldest still waiting. Partial,
-- so a job enters each index once rather than on every update.
CREATE INDEX jobs_finished_idx ON cogo.jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_queued_age_idx ON cogo.jobs (created_at) WHERE status = 'queued';
-- Letters not yet retried: the dead-letter depth.
CREATE INDEX job_dead_letters_pending_idx ON cogo.job_dead_letters (dead_at) WHERE retried_at IS NULL;

-- Exact job counts without counting a million rows: totals per (type,
-- executor, status), kept by statement-level triggers. Each database
-- session adds its changes to rows of its own (shard = its backend pid), so
-- concurrent transactions never wait on one another's counters and cannot
-- deadlock on them. The cron folds the rows of ended sessions into shard 0.
CREATE TABLE cogo.job_counts (
  shard       integer NOT NULL,
  type        text NOT NULL,
  executor_id text NOT NULL,
  status      text NOT NULL,
  jobs        bigint NOT NULL,
  lost_leases bigint NOT NULL,
  PRIMARY KEY (shard, type, executor_id, status)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON cogo.job_counts TO service_role;

CREATE FUNCTION cogo.jobs_count() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  -- Rows are locked in key order, the same in every statement.
  IF TG_OP = 'INSERT' THEN
    INSERT INTO cogo.job_counts AS c (shard, type, executor_id, status, jobs, lost_leases)
    SELECT pg_backend_pid(), type, executor_id, status, count(*), sum(lost_leases)
    FROM new_jobs GROUP BY type, executor_id, status ORDER BY type, executor_id, status
    ON CONFLICT (shard, type, executor_id, status)
    DO UPDATE SET jobs = c.jobs + excluded.jobs, lost_leases = c.lost_leases + excluded.lost_leases;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO cogo.job_counts AS c (shard, type, executor_id, status, jobs, lost_leases)
    SELECT pg_backend_pid(), d.type, d.executor_id, d.status, sum(d.jobs), sum(d.lost_leases)
    FROM (SELECT type, executor_id, status, 1 AS jobs, lost_leases FROM new_jobs
          UNION ALL
          SELECT type, executor_id, status, -1, -lost_leases FROM old_jobs) d
    GROUP BY d.type, d.executor_id, d.status
    HAVING sum(d.jobs) <> 0 OR sum(d.lost_leases) <> 0
    ORDER BY d.type, d.executor_id, d.status
    ON CONFLICT (shard, type, executor_id, status)
    DO UPDATE SET jobs = c.jobs + excluded.jobs, lost_leases = c.lost_leases + excluded.lost_leases;
  ELSE
    INSERT INTO cogo.job_counts AS c (shard, type, executor_id, status, jobs, lost_leases)
    SELECT pg_backend_pid(), type, executor_id, status, -count(*), -sum(lost_leases)
    FROM old_jobs GROUP BY type, executor_id, status ORDER BY type, executor_id, status
    ON CONFLICT (shard, type, executor_id, status)
    DO UPDATE SET jobs = c.jobs + excluded.jobs, lost_leases = c.lost_leases + excluded.lost_leases;
  END IF;
  RETURN NULL;
END
$$;

-- Count what is already there, with writers held off until the triggers exist.
LOCK TABLE cogo.jobs IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO cogo.job_counts (shard, type, executor_id, status, jobs, lost_leases)
SELECT 0, type, executor_id, status, count(*), sum(lost_leases) FROM cogo.jobs GROUP BY type, executor_id, status;

CREATE TRIGGER jobs_count_inserted AFTER INSERT ON cogo.jobs
  REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION cogo.jobs_count();
CREATE TRIGGER jobs_count_changed AFTER UPDATE ON cogo.jobs
  REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION cogo.jobs_count();
CREATE TRIGGER jobs_count_deleted AFTER DELETE ON cogo.jobs
  REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION cogo.jobs_count();

-- Folds the counters of sessions that have ended into shard 0. Rows a
-- live session holds are skipped, so this never waits on a request.
CREATE FUNCTION cogo.compact_job_counts() RETURNS jsonb
  LANGUAGE plpgsql AS $$
DECLARE
  folded integer;
BEGIN
  -- Shard 0 is written only here; one compaction at a time.
  PERFORM pg_advisory_xact_lock(hashtext('cogo.compact_job_counts'));
  WITH gone AS (
    DELETE FROM cogo.job_counts c
    WHERE c.ctid IN (SELECT ctid FROM cogo.job_counts
                     WHERE shard <> 0 AND shard NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
                     FOR UPDATE SKIP LOCKED)
    RETURNING c.*
  ), merged AS (
    INSERT INTO cogo.job_counts AS c (shard, type, executor_id, status, jobs, lost_leases)
    SELECT 0, type, executor_id, status, sum(jobs), sum(lost_leases)
    FROM gone GROUP BY type, executor_id, status
    ON CONFLICT (shard, type, executor_id, status)
    DO UPDATE SET jobs = c.jobs + excluded.jobs, lost_leases = c.lost_leases + excluded.lost_leases
  )
  SELECT count(*) INTO folded FROM gone;
  DELETE FROM cogo.job_counts WHERE shard = 0 AND jobs = 0 AND lost_leases = 0;
  RETURN jsonb_build_object('folded', folded);
END
$$;

-- A job, or 404 when it does not exist or the caller may not see it.
CREATE FUNCTION cogo.visible_job(p_job_id uuid) RETURNS cogo.jobs
  LANGUAGE plpgsql STABLE AS $$
DECLARE
  j cogo.jobs;
BEGIN
  SELECT * INTO j FROM cogo.jobs WHERE id = p_job_id;
  IF NOT FOUND THEN
    RAISE SQLSTATE 'PT404' USING MESSAGE = 'job_not_found', DETAIL = format('no job %s', p_job_id);
  END IF;
  RETURN j;
END
$$;

CREATE FUNCTION cogo.event_json(e cogo.job_events) RETURNS jsonb
  LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('id', e.seq, 'seq', e.seq, 'job_id', e.job_id, 'event_type', e.event_type,
                            'payload', e.payload, 'created_at', e.created_at)
$$;

CREATE FUNCTION cogo.artifact_json(a cogo.artifacts) RETURNS jsonb
  LANGUAGE sql IMMUTABLE AS $$
  SELECT to_jsonb(a)
$$;

-- A job's artifacts: the uploads recorded for it, then the files its result
-- names ({name, url, size}, as the older workers report files they stored
-- elsewhere) that were not uploaded here.
CREATE FUNCTION cogo.artifacts_of(j cogo.jobs) RETURNS jsonb
  LANGUAGE sql STABLE AS $$
  SELECT coalesce((SELECT jsonb_agg(cogo.artifact_json(a) ORDER BY a.created_at, a.id)
                   FROM cogo.artifacts a WHERE a.job_id = j.id), '[]'::jsonb)
      || coalesce((SELECT jsonb_agg(jsonb_build_object(
                            'id', NULL, 'job_id', j.id, 'bucket', NULL, 'path', NULL, 'name', r ->> 'name',
                            'size', CASE WHEN r ->> 'size' ~ '^[0-9]{1,15}$' THEN (r ->> 'size')::bigint END,
                            'mime', r ->> 'mime', 'sha256', NULL, 'url', r ->> 'url',
                            'created_at', coalesce(j.finished_at, j.updated_at)) ORDER BY n)
                   FROM jsonb_array_elements(CASE WHEN jsonb_typeof(j.result -> 'artifacts') = 'array'
                                                  THEN j.result -> 'artifacts' ELSE '[]'::jsonb END)
                        WITH ORDINALITY AS x(r, n)
                   WHERE jsonb_typeof(r) = 'object' AND r ? 'name'
                     AND NOT EXISTS (SELECT 1 FROM cogo.artifacts a WHERE a.job_id = j.id AND a.name = r ->> 'name')),
                  '[]'::jsonb)
$$;

CREATE FUNCTION cogo.job_get(p_job_id uuid) RETURNS jsonb
  LANGUAGE sql STABLE AS $$
  SELECT cogo.job_json(cogo.visible_job(p_job_id))
$$;

-- The job with its artifacts and its latest events (in seq order);
-- `moreEvents` says whether older ones exist (events/by-job pages them).
CREATE FUNCTION cogo.job_summary(p_job_id uuid, p_events integer DEFAULT 100) RETURNS jsonb
  LANGUAGE plpgsql STABLE AS $$
DECLARE
  j cogo.jobs := cogo.visible_job(p_job_id);
  events jsonb;
  more boolean;
BEGIN
  SELECT coalesce(jsonb_agg(cogo.event_json(e) ORDER BY e.seq), '[]'::jsonb) INTO events
  FROM (SELECT * FROM cogo.job_events WHERE job_id = j.id ORDER BY seq DESC LIMIT p_events) e;
  SELECT count(*) > p_events INTO more
  FROM (SELECT 1 FROM cogo.job_events WHERE job_id = j.id LIMIT p_events + 1) x;
  RETURN jsonb_build_object('job', cogo.job_json(j), 'artifacts', cogo.artifacts_of(j), 'events', events,
                            'moreEvents', more);
END
$$;

-- A job's events in seq order, after p_after.
CREATE FUNCTION cogo.job_events_page(p_job_id uuid, p_after bigint DEFAULT 0, p_limit integer DEFAULT 100)
RETURNS jsonb
  LANGUAGE plpgsql STABLE AS $$
DECLARE
  j cogo.jobs := cogo.visible_job(p_job_id);
  page jsonb;
  more boolean;
BEGIN
  SELECT coalesce(jsonb_agg(cogo.event_json(e) ORDER BY e.seq), '[]'::jsonb), count(*) > p_limit INTO page, more
  FROM (SELECT * FROM cogo.job_events WHERE job_id = j.id AND seq > coalesce(p_after, 0)
        ORDER BY seq LIMIT p_limit + 1) e;
  IF more THEN
    page := page - p_limit;
  END IF;
  RETURN jsonb_build_object('items', page,
                            'next', CASE WHEN more THEN page -> (p_limit - 1) -> 'seq' END);
END
$$;

CREATE FUNCTION cogo.job_artifacts(p_job_id uuid) RETURNS jsonb
  LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('items', cogo.artifacts_of(cogo.visible_job(p_job_id)))
$$;

-- Jobs newest first. The cursor is the (created_at, id) of the last row
-- seen, so rows sharing a created_at are neither skipped nor repeated; a
-- bare timestamp (p_before, the older clients' cursor) means created_at
-- strictly before it.
CREATE FUNCTION cogo.jobs_recent(
  p_limit integer DEFAULT 20, p_after_at timestamptz DEFAULT NULL, p_after_id uuid DEFAULT NULL,
  p_before timestamptz DEFAULT NULL, p_status text DEFAULT NULL, p_executor_id text DEFAULT NULL,
  p_type text DEFAULT NULL)
RETURNS jsonb
  LANGUAGE plpgsql STABLE AS $$
DECLARE
  rows cogo.jobs[];
  more boolean;
BEGIN
  SELECT array_agg(j ORDER BY j.created_at DESC, j.id DESC) INTO rows
  FROM (SELECT * FROM cogo.jobs
        WHERE (p_after_at IS NULL OR (created_at, id) < (p_after_at, p_after_id))
          AND (p_before IS NULL OR created_at < p_before)
          AND (p_status IS NULL OR status = p_status)
          AND (p_executor_id IS NULL OR executor_id = p_executor_id)
          AND (p_type IS NULL OR type = p_type)
        ORDER BY created_at DESC, id DESC
        LIMIT p_limit + 1) j;
  more := coalesce(array_length(rows, 1), 0) > p_limit;
  RETURN jsonb_build_object(
    'items', (SELECT coalesce(jsonb_agg(cogo.job_json(rows[i]) ORDER BY i), '[]'::jsonb)
              FROM generate_subscripts(rows, 1) i WHERE i <= p_limit),
    'next', CASE WHEN more THEN jsonb_build_object('at', (rows[p_limit]).created_at, 'id', (rows[p_limit]).id) END);
END
$$;

CREATE FUNCTION cogo.dead_letter_json(d cogo.job_dead_letters) RETURNS jsonb
  LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('id', d.id, 'job_id', d.job_id, 'type', d.type, 'executor_id', d.executor_id,
                            'reason', d.reason, 'error', d.error, 'errors', d.errors, 'payload', d.payload,
                            'attempts', d.attempts, 'created_at', d.dead_at, 'retries', d.retries,
                            'retried_at', d.retried_at, 'retried_job_id', d.retried_job_id)
$$;

-- Dead letters newest first, paged like jobs_recent over (dead_at, id);
-- p_from <= dead_at < p_to.
CREATE FUNCTION cogo.dlq_list(
  p_limit integer DEFAULT 20, p_after_at timestamptz DEFAULT NULL, p_after_id bigint DEFAULT NULL,
  p_before timestamptz DEFAULT NULL, p_type text DEFAULT NULL, p_executor_id text DEFAULT NULL,
  p_from timestamptz DEFAULT NULL, p_to timestamptz DEFAULT NULL)
RETURNS jsonb
  LANGUAGE plpgsql STABLE AS $$
DECLARE
  rows cogo.job_dead_letters[];
  more boolean;
BEGIN
  SELECT array_agg(d ORDER BY d.dead_at DESC, d.id DESC) INTO rows
  FROM (SELECT * FROM cogo.job_dead_letters
        WHERE (p_after_at IS NULL OR (dead_at, id) < (p_after_at, p_after_id))
          AND (p_before IS NULL OR dead_at < p_before)
          AND (p_type IS NULL OR type = p_type)
          AND (p_executor_id IS NULL OR executor_id = p_executor_id)
          AND (p_from IS NULL OR dead_at >= p_from)
          AND (p_to IS NULL OR dead_at < p_to)
        ORDER BY dead_at DESC, id DESC
        LIMIT p_limit + 1) d;
  more := coalesce(array_length(rows, 1), 0) > p_limit;
  RETURN jsonb_build_object(
    'items', (SELECT coalesce(jsonb_agg(cogo.dead_letter_json(rows[i]) ORDER BY i), '[]'::jsonb)
              FROM generate_subscripts(rows, 1) i WHERE i <= p_limit),
    'next', CASE WHEN more THEN jsonb_build_object('at', (rows[p_limit]).dead_at, 'id', (rows[p_limit]).id) END);
END
$$;

-- Replays one locked letter as a new job (same type, executor, payload,
-- owner and retry policy) under the idempotency key dlq:<job_id>, so a
-- letter retried twice still makes one job.
CREATE FUNCTION cogo.retry_letter(d cogo.job_dead_letters) RETURNS jsonb
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
                          j.max_attempts, j.owner_id, j.backoff_base_ms, j.backoff_cap_ms);
  UPDATE cogo.job_dead_letters
  SET retries = retries + 1, retried_at = now(), retried_job_id = (outcome ->> 'jobId')::uuid
  WHERE id = d.id;
  RETURN jsonb_build_object('dlqId', d.id, 'deadJobId', d.job_id, 'jobId', outcome -> 'jobId', 'retried', true);
END
$$;

CREATE FUNCTION cogo.dlq_retry(p_dlq_id bigint) RETURNS jsonb
  LANGUAGE plpgsql AS $$
DECLARE
  d cogo.job_dead_letters;
BEGIN
  SELECT * INTO d FROM cogo.job_dead_letters WHERE id = p_dlq_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE SQLSTATE 'PT404' USING MESSAGE = 'dead_letter_not_found', DETAIL = format('no dead letter %s', p_dlq_id);
  END IF;
  RETURN cogo.retry_letter(d);
END
$$;

-- Retries up to p_max letters not yet retried that match the filter,
-- oldest first; with p_dry_run, only says which.
CREATE FUNCTION cogo.dlq_retry_matching(
  p_max integer, p_dry_run boolean, p_type text DEFAULT NULL, p_executor_id text DEFAULT NULL,
  p_from timestamptz DEFAULT NULL, p_to timestamptz DEFAULT NULL)
RETURNS jsonb
  LANGUAGE plpgsql AS $$
DECLARE
  d cogo.job_dead_letters;
  items jsonb := '[]'::jsonb;
BEGIN
  FOR d IN
    SELECT * FROM cogo.job_dead_letters
    WHERE retried_at IS NULL
      AND (p_type IS NULL OR type = p_type)
      AND (p_executor_id IS NULL OR executor_id = p_executor_id)
      AND (p_from IS NULL OR dead_at >= p_from)
      AND (p_to IS NULL OR dead_at < p_to)
    ORDER BY dead_at, id
    LIMIT p_max
    FOR UPDATE SKIP LOCKED
  LOOP
    items := items || CASE WHEN p_dry_run THEN jsonb_build_object('dlqId', d.id, 'deadJobId', d.job_id)
                           ELSE cogo.retry_letter(d) END;
  END LOOP;
  RETURN jsonb_build_object('dryRun', p_dry_run, 'count', jsonb_array_length(items), 'items', items);
END
$$;

CREATE FUNCTION cogo.workers_active(p_window_seconds integer DEFAULT 20) RETURNS jsonb
  LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('items', coalesce(jsonb_agg(to_jsonb(h) ORDER BY h.last_seen_at DESC, h.worker_id), '[]'::jsonb),
                            'count', count(*))
  FROM cogo.worker_heartbeats_v2 h
  WHERE h.last_seen_at > now() - make_interval(secs => p_window_seconds)
$$;

-- Everything an operator's overview shows, in one statement. Totals come
-- from the counters; the timing figures from the most recent (at most
-- 10,000) jobs finished in the last hour, so the cost stays bounded.
CREATE FUNCTION cogo.metrics_overview(p_active_window_seconds integer DEFAULT 20, p_latest integer DEFAULT 10)
RETURNS jsonb
  LANGUAGE sql STABLE AS $$
  WITH totals AS (
    SELECT type, executor_id, status, sum(jobs)::bigint AS jobs, sum(lost_leases)::bigint AS lost_leases
    FROM cogo.job_counts GROUP BY type, executor_id, status
  ), statuses(status) AS (
    VALUES ('queued'), ('assigned'), ('running'), ('succeeded'), ('failed'), ('dead'), ('cancelled')
  ), by_type AS (
    SELECT type AS key, status, sum(jobs) AS jobs FROM totals GROUP BY type, status
  ), by_executor AS (
    SELECT executor_id AS key, status, sum(jobs) AS jobs FROM totals GROUP BY executor_id, status
  ), sampled AS (
    SELECT created_at, started_at, finished_at FROM cogo.jobs
    WHERE finished_at > now() - interval '1 hour'
    ORDER BY finished_at DESC LIMIT 10000
  )
  SELECT jsonb_build_object(
    'ok', true,
    'ts', now(),
    'counts', (SELECT jsonb_object_agg(s.status, coalesce(t.jobs, 0))
               FROM statuses s LEFT JOIN (SELECT status, sum(jobs) AS jobs FROM totals GROUP BY status) t USING (status)),
    'total', (SELECT coalesce(sum(jobs), 0) FROM totals),
    'byType', (SELECT coalesce(jsonb_object_agg(key, counts), '{}'::jsonb)
               FROM (SELECT key, jsonb_object_agg(status, jobs) AS counts FROM by_type WHERE jobs <> 0 GROUP BY key) x),
    'byExecutor', (SELECT coalesce(jsonb_object_agg(key, counts), '{}'::jsonb)
                   FROM (SELECT key, jsonb_object_agg(status, jobs) AS counts FROM by_executor WHERE jobs <> 0
                         GROUP BY key) x),
    'successRate', jsonb_build_object(
      'byType', (SELECT coalesce(jsonb_object_agg(key, rate), '{}'::jsonb) FROM (
                   SELECT key, round(coalesce(sum(jobs) FILTER (WHERE status = 'succeeded'), 0)
                                     / sum(jobs) FILTER (WHERE status IN ('succeeded', 'failed', 'dead')), 4) AS rate
                   FROM by_type GROUP BY key
                   HAVING sum(jobs) FILTER (WHERE status IN ('succeeded', 'failed', 'dead')) > 0) x),
      'byExecutor', (SELECT coalesce(jsonb_object_agg(key, rate), '{}'::jsonb) FROM (
                   SELECT key, round(coalesce(sum(jobs) FILTER (WHERE status = 'succeeded'), 0)
                                     / sum(jobs) FILTER (WHERE status IN ('succeeded', 'failed', 'dead')), 4) AS rate
                   FROM by_executor GROUP BY key
                   HAVING sum(jobs) FILTER (WHERE status IN ('succeeded', 'failed', 'dead')) > 0) x)),
    'finished', jsonb_build_object(
      '1m', (SELECT count(*) FROM cogo.jobs WHERE finished_at > now() - interval '1 minute'),
      '5m', (SELECT count(*) FROM cogo.jobs WHERE finished_at > now() - interval '5 minutes'),
      '1h', (SELECT count(*) FROM cogo.jobs WHERE finished_at > now() - interval '1 hour')),
    'queueWaitMs', (SELECT jsonb_build_object(
                      'p50', round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
                      'p95', round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1))
                    FROM (SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms
                          FROM sampled WHERE started_at IS NOT NULL) w),
    'runTimeMs', (SELECT jsonb_build_object(
                    'p50', round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
                    'p95', round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1))
                  FROM (SELECT extract(epoch FROM finished_at - started_at) * 1000 AS ms
                        FROM sampled WHERE started_at IS NOT NULL) r),
    'oldestQueuedAgeSeconds', (SELECT round(extract(epoch FROM now() - min(created_at)), 3)
                               FROM cogo.jobs WHERE status = 'queued'),
    'deadLetters', (SELECT count(*) FROM cogo.job_dead_letters WHERE retried_at IS NULL),
    'activeWorkers', (SELECT count(*) FROM cogo.worker_heartbeats_v2
                      WHERE last_seen_at > now() - make_interval(secs => p_active_window_seconds)),
    'lostLeases', (SELECT coalesce(sum(lost_leases), 0) FROM totals),
    'latest', (SELECT coalesce(jsonb_agg(cogo.job_json(j) ORDER BY j.created_at DESC, j.id DESC), '[]'::jsonb)
               FROM (SELECT * FROM cogo.jobs ORDER BY created_at DESC, id DESC LIMIT p_latest) j))
$$;

-- Reads a user may make with their own JWT (row level security applies).
GRANT EXECUTE ON FUNCTION cogo.job_json(cogo.jobs), cogo.visible_job(uuid), cogo.event_json(cogo.job_events),
  cogo.artifact_json(cogo.artifacts), cogo.artifacts_of(cogo.jobs), cogo.job_get(uuid), cogo.job_summary(uuid, integer),
  cogo.job_events_page(uuid, bigint, integer), cogo.job_artifacts(uuid),
  cogo.jobs_recent(integer, timestamptz, uuid, timestamptz, text, text, text)
  TO authenticated, service_role;
-- The platform's own.
GRANT EXECUTE ON FUNCTION cogo.jobs_count(), cogo.compact_job_counts(),
  cogo.dead_letter_json(cogo.job_dead_letters),
  cogo.dlq_list(integer, timestamptz, bigint, timestamptz, text, text, timestamptz, timestamptz),
  cogo.retry_letter(cogo.job_dead_letters), cogo.dlq_retry(bigint),
  cogo.dlq_retry_matching(integer, boolean, text, text, timestamptz, timestamptz),
  cogo.workers_active(integer), cogo.metrics_overview(integer, integer)
  TO service_role;
