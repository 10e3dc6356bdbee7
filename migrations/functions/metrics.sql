-- Exact job counts without counting a million rows: totals per (type,
-- executor, status), kept by statement-level triggers. Each database
-- session adds its changes to rows of its own (shard = its backend pid), so
-- concurrent transactions never wait on one another's counters and cannot
-- deadlock on them. The cron folds the rows of ended sessions into shard 0.
-- The table is in 0001_baseline.sql; a fresh database has no jobs to count,
-- and older ones had theirs counted when the table was made.
CREATE OR REPLACE FUNCTION cogo.jobs_count() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  -- The upserts lock rows in key order, the same in every statement.
  IF TG_OP = 'INSERT' THEN
    INSERT INTO cogo.job_counts AS c (shard, type, executor_id, status, jobs, lost_leases)
    SELECT pg_backend_pid(), type, executor_id, status, count(*), sum(lost_leases)
    FROM new_jobs GROUP BY type, executor_id, status ORDER BY type, executor_id, status
    ON CONFLICT (shard, type, executor_id, status)
    DO UPDATE SET jobs = c.jobs + excluded.jobs, lost_leases = c.lost_leases + excluded.lost_leases;
  ELSIF TG_OP = 'UPDATE' THEN
    -- Every claim and result comes here, and its rows almost always exist:
    -- a plain UPDATE writes each once, where ON CONFLICT DO UPDATE first
    -- locks it (a WAL record more per row). Only this session writes its
    -- shard, so no other transaction can insert the missing rows meanwhile.
    WITH d AS (
      SELECT d.type, d.executor_id, d.status, sum(d.jobs) AS jobs, sum(d.lost_leases) AS lost_leases
      FROM (SELECT type, executor_id, status, 1 AS jobs, lost_leases FROM new_jobs
            UNION ALL
            SELECT type, executor_id, status, -1, -lost_leases FROM old_jobs) d
      GROUP BY d.type, d.executor_id, d.status
      HAVING sum(d.jobs) <> 0 OR sum(d.lost_leases) <> 0
    ), bumped AS (
      UPDATE cogo.job_counts c SET jobs = c.jobs + d.jobs, lost_leases = c.lost_leases + d.lost_leases
      FROM d
      WHERE c.shard = pg_backend_pid() AND (c.type, c.executor_id, c.status) = (d.type, d.executor_id, d.status)
      RETURNING c.type, c.executor_id, c.status
    )
    INSERT INTO cogo.job_counts (shard, type, executor_id, status, jobs, lost_leases)
    SELECT pg_backend_pid(), d.type, d.executor_id, d.status, d.jobs, d.lost_leases FROM d
    WHERE NOT EXISTS (SELECT FROM bumped b WHERE (b.type, b.executor_id, b.status) = (d.type, d.executor_id, d.status));
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

CREATE OR REPLACE TRIGGER jobs_count_inserted AFTER INSERT ON cogo.jobs
  REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION cogo.jobs_count();
CREATE OR REPLACE TRIGGER jobs_count_changed AFTER UPDATE ON cogo.jobs
  REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION cogo.jobs_count();
CREATE OR REPLACE TRIGGER jobs_count_deleted AFTER DELETE ON cogo.jobs
  REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION cogo.jobs_count();

-- Folds the counters of sessions that have ended into shard 0. Rows a
-- live session holds are skipped, so this never waits on a request.
CREATE OR REPLACE FUNCTION cogo.compact_job_counts() RETURNS jsonb
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

-- Everything an operator's overview shows, in one statement. Totals come
-- from the counters; the timing figures from the most recent (at most
-- 10,000) jobs finished in the last hour, so the cost stays bounded.
CREATE OR REPLACE FUNCTION cogo.metrics_overview(p_active_window_seconds integer DEFAULT 20, p_latest integer DEFAULT 10)
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

GRANT EXECUTE ON FUNCTION cogo.jobs_count(), cogo.compact_job_counts(), cogo.metrics_overview(integer, integer)
  TO service_role;

-- The per-minute history (metrics-history). The cron folds finished
-- minutes of the event log into cogo.job_minutes and cogo.job_minute_waits
-- (0006_job_minutes.sql); a read takes those rows and the events after
-- them. Transactions here last milliseconds: the fold waits one minute
-- past a minute's end before it takes that minute, and a transaction still
-- open after that is not counted.

-- A wait in ms as its bucket of cogo.job_minute_waits: four per doubling.
CREATE OR REPLACE FUNCTION cogo.wait_bucket(p_ms double precision) RETURNS smallint
  LANGUAGE sql IMMUTABLE AS $$
  SELECT ceil(4 * ln(greatest(p_ms, 1)) / ln(2))::smallint
$$;

-- What the events created in [p_from, p_until) with a seq above p_seq_floor
-- say about each minute. `failed` counts failed attempts, retried or the
-- last (no job ends in status failed any more; a last failure is a dead
-- letter); `retried` the attempts that went back to the queue, after a
-- failure or a lost lease. The queue is entered by a job's creation, a retry,
-- a lost lease or a requeue, and left by a claim or a queued job's cancel.
CREATE OR REPLACE FUNCTION cogo.event_minutes(p_seq_floor bigint, p_from timestamptz, p_until timestamptz)
RETURNS TABLE (minute timestamptz, enqueued integer, claimed integer, succeeded integer, failed integer,
               dead integer, cancelled integer, retried integer, queue_delta integer)
  LANGUAGE sql STABLE AS $$
  SELECT date_bin('1 minute', e.created_at, 'epoch'),
    (count(*) FILTER (WHERE e.event_type = 'created'))::integer,
    (count(*) FILTER (WHERE e.event_type = 'claimed'))::integer,
    (count(*) FILTER (WHERE e.event_type = 'succeeded'))::integer,
    (count(*) FILTER (WHERE e.event_type IN ('failed', 'retry_scheduled', 'dead_lettered')))::integer,
    (count(*) FILTER (WHERE e.event_type = 'dead_lettered'))::integer,
    (count(*) FILTER (WHERE e.event_type = 'cancelled'))::integer,
    (count(*) FILTER (WHERE e.event_type IN ('retry_scheduled', 'lease_expired')))::integer,
    sum(CASE WHEN e.event_type IN ('created', 'retry_scheduled', 'lease_expired', 'requeued') THEN 1
             WHEN e.event_type = 'claimed' THEN -1
             WHEN e.event_type = 'cancelled' AND e.payload->>'from' = 'queued' THEN -1
             ELSE 0 END)::integer
  FROM cogo.job_events e
  WHERE e.seq > p_seq_floor AND e.created_at >= p_from AND e.created_at < p_until
  GROUP BY 1
$$;

-- First claims among the same events, by minute and wait bucket; a job's
-- wait runs from its `created` event (its first) to the claim.
CREATE OR REPLACE FUNCTION cogo.event_minute_waits(p_seq_floor bigint, p_from timestamptz, p_until timestamptz)
RETURNS TABLE (minute timestamptz, bucket smallint, jobs integer)
  LANGUAGE sql STABLE AS $$
  SELECT date_bin('1 minute', e.created_at, 'epoch'),
    cogo.wait_bucket(extract(epoch FROM e.created_at - c.created_at)::double precision * 1000),
    count(*)::integer
  FROM cogo.job_events e
  CROSS JOIN LATERAL (SELECT f.created_at FROM cogo.job_events f WHERE f.job_id = e.job_id ORDER BY f.seq LIMIT 1) c
  WHERE e.seq > p_seq_floor AND e.created_at >= p_from AND e.created_at < p_until
    AND e.event_type = 'claimed' AND e.payload->>'attempt' = '1'
  GROUP BY 1, 2
$$;

-- Folds the minutes that ended over a minute ago; called by the cron every
-- minute. Each minute is folded once; rows older than two days go.
CREATE OR REPLACE FUNCTION cogo.fold_job_minutes() RETURNS jsonb
  LANGUAGE plpgsql SET jit = off AS $$
DECLARE
  f cogo.job_minutes_folded;
  until timestamptz := date_bin('1 minute', now(), 'epoch') - interval '1 minute';
  minutes integer;
BEGIN
  -- One fold at a time.
  SELECT * INTO f FROM cogo.job_minutes_folded FOR UPDATE;
  IF until <= f.folded_until THEN
    RETURN jsonb_build_object('minutes', 0, 'foldedUntil', f.folded_until);
  END IF;
  INSERT INTO cogo.job_minutes SELECT * FROM cogo.event_minutes(f.seq_floor, f.folded_until, until);
  GET DIAGNOSTICS minutes = ROW_COUNT;
  INSERT INTO cogo.job_minute_waits SELECT * FROM cogo.event_minute_waits(f.seq_floor, f.folded_until, until);
  -- The next floor: an event created a minute before `until` was written
  -- before `until`, so before every event created from `until` on.
  UPDATE cogo.job_minutes_folded SET folded_until = until,
    seq_floor = coalesce((SELECT max(seq) FROM cogo.job_events
                          WHERE seq > f.seq_floor AND created_at < until - interval '1 minute'), f.seq_floor);
  DELETE FROM cogo.job_minutes WHERE minute < until - interval '2 days';
  DELETE FROM cogo.job_minute_waits WHERE minute < until - interval '2 days';
  RETURN jsonb_build_object('minutes', minutes, 'foldedUntil', until);
END
$$;

-- Figures per step over the window ending now, oldest first; the last point
-- is the step under way. Queue depth is at each step's end (now, for the
-- last); waitP95Ms is the upper edge of the bucket holding the 95th
-- percentile of that step's first claims (null without any).
-- JIT is off: the planner cannot see how few rows the rollup and the tail
-- hold, its estimate passes jit_above_cost, and compiling the plan took
-- 0.8 s of a read that runs in milliseconds.
CREATE OR REPLACE FUNCTION cogo.metrics_history(p_window_seconds integer DEFAULT 3600,
  p_step_seconds integer DEFAULT 60)
RETURNS jsonb
  LANGUAGE sql STABLE SET jit = off AS $$
  WITH folded AS (
    SELECT folded_until, seq_floor FROM cogo.job_minutes_folded
  ), span AS (
    SELECT s.step, l.last_start - (p_window_seconds / p_step_seconds - 1) * s.step AS first_start, l.last_start
    FROM (SELECT make_interval(secs => p_step_seconds) AS step) s
    CROSS JOIN LATERAL (SELECT date_bin(s.step, now(), 'epoch') AS last_start) l
  ), minutes AS (
    SELECT m.* FROM cogo.job_minutes m, span, folded
    WHERE m.minute >= span.first_start AND m.minute < folded.folded_until
    UNION ALL
    SELECT t.* FROM span, folded,
      cogo.event_minutes(folded.seq_floor, greatest(folded.folded_until, span.first_start), 'infinity') t
  ), waits AS (
    SELECT w.* FROM cogo.job_minute_waits w, span, folded
    WHERE w.minute >= span.first_start AND w.minute < folded.folded_until
    UNION ALL
    SELECT t.* FROM span, folded,
      cogo.event_minute_waits(folded.seq_floor, greatest(folded.folded_until, span.first_start), 'infinity') t
  ), steps AS (
    SELECT date_bin(span.step, m.minute, 'epoch') AS t, sum(m.enqueued) AS enqueued, sum(m.claimed) AS claimed,
      sum(m.succeeded) AS succeeded, sum(m.failed) AS failed, sum(m.dead) AS dead, sum(m.cancelled) AS cancelled,
      sum(m.retried) AS retried, sum(m.queue_delta) AS queue_delta
    FROM minutes m, span GROUP BY 1
  ), wait_buckets AS (
    SELECT date_bin(span.step, w.minute, 'epoch') AS t, w.bucket, sum(w.jobs) AS jobs
    FROM waits w, span GROUP BY 1, 2
  ), wait_p95 AS (
    SELECT t, min(bucket) FILTER (WHERE below >= 0.95 * total) AS bucket
    FROM (SELECT t, bucket, sum(jobs) OVER (PARTITION BY t ORDER BY bucket) AS below,
                 sum(jobs) OVER (PARTITION BY t) AS total
          FROM wait_buckets) x
    GROUP BY t
  ), points AS (
    SELECT p.t, coalesce(s.enqueued, 0) AS enqueued, coalesce(s.claimed, 0) AS claimed,
      coalesce(s.succeeded, 0) AS succeeded, coalesce(s.failed, 0) AS failed, coalesce(s.dead, 0) AS dead,
      coalesce(s.cancelled, 0) AS cancelled, coalesce(s.retried, 0) AS retried,
      -- What entered the queue after this step ended, to take off today's depth.
      coalesce(sum(s.queue_delta) OVER (ORDER BY p.t DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
        AS later_delta,
      w.bucket
    FROM span CROSS JOIN LATERAL generate_series(span.first_start, span.last_start, span.step) p(t)
    LEFT JOIN steps s USING (t) LEFT JOIN wait_p95 w USING (t)
  ), depth AS (
    SELECT coalesce(sum(jobs), 0) AS queued FROM cogo.job_counts WHERE status = 'queued'
  )
  SELECT jsonb_build_object(
    'ok', true,
    'ts', now(),
    'window', p_window_seconds,
    'step', p_step_seconds,
    'points', jsonb_agg(jsonb_build_object(
      't', p.t, 'enqueued', p.enqueued, 'claimed', p.claimed, 'succeeded', p.succeeded, 'failed', p.failed,
      'dead', p.dead, 'cancelled', p.cancelled, 'retried', p.retried,
      -- Never below zero, should the log and the counters disagree (a
      -- table emptied by hand).
      'queueDepth', greatest(depth.queued - p.later_delta, 0),
      'waitP95Ms', round(power(2, p.bucket / 4.0)::numeric, 1)) ORDER BY p.t))
  FROM points p, depth
$$;

GRANT EXECUTE ON FUNCTION cogo.wait_bucket(double precision), cogo.event_minutes(bigint, timestamptz, timestamptz),
  cogo.event_minute_waits(bigint, timestamptz, timestamptz), cogo.fold_job_minutes(),
  cogo.metrics_history(integer, integer)
  TO service_role;
