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
