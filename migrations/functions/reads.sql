-- What dashboards, operators and clients read. Reads on behalf of a user
-- run under the user's own JWT, so the row level security policies decide
-- what they see (someone else's job is simply not found); the platform
-- (service_role) reads everything. Each read is one function: one round
-- trip. Listings return {items, next}: `next` is the sort key of the last
-- item when more rows follow, and the edge turns it into an opaque cursor.

-- A job, or 404 when it does not exist or the caller may not see it.
CREATE OR REPLACE FUNCTION cogo.visible_job(p_job_id uuid) RETURNS cogo.jobs
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

CREATE OR REPLACE FUNCTION cogo.event_json(e cogo.job_events) RETURNS jsonb
  LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('id', e.seq, 'seq', e.seq, 'job_id', e.job_id, 'event_type', e.event_type,
                            'payload', e.payload, 'created_at', e.created_at)
$$;

-- A job's artifacts: the uploads recorded for it, then the files its result
-- names ({name, url, size}, as the older workers report files they stored
-- elsewhere) that were not uploaded here.
CREATE OR REPLACE FUNCTION cogo.artifacts_of(j cogo.jobs) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION cogo.job_get(p_job_id uuid) RETURNS jsonb
  LANGUAGE sql STABLE AS $$
  SELECT cogo.job_json(cogo.visible_job(p_job_id))
$$;

-- The job with its artifacts and its latest events (in seq order);
-- `moreEvents` says whether older ones exist (events/by-job pages them).
CREATE OR REPLACE FUNCTION cogo.job_summary(p_job_id uuid, p_events integer DEFAULT 100) RETURNS jsonb
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
CREATE OR REPLACE FUNCTION cogo.job_events_page(p_job_id uuid, p_after bigint DEFAULT 0, p_limit integer DEFAULT 100)
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

CREATE OR REPLACE FUNCTION cogo.job_artifacts(p_job_id uuid) RETURNS jsonb
  LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('items', cogo.artifacts_of(cogo.visible_job(p_job_id)))
$$;

-- Jobs newest first. The cursor is the (created_at, id) of the last row
-- seen, so rows sharing a created_at are neither skipped nor repeated; a
-- bare timestamp (p_before, the older clients' cursor) means created_at
-- strictly before it.
CREATE OR REPLACE FUNCTION cogo.jobs_recent(
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

CREATE OR REPLACE FUNCTION cogo.workers_active(p_window_seconds integer DEFAULT 20) RETURNS jsonb
  LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('items', coalesce(jsonb_agg(to_jsonb(h) ORDER BY h.last_seen_at DESC, h.worker_id), '[]'::jsonb),
                            'count', count(*))
  FROM cogo.worker_heartbeats_v2 h
  WHERE h.last_seen_at > now() - make_interval(secs => p_window_seconds)
$$;

-- Reads a user may make with their own JWT (row level security applies).
GRANT EXECUTE ON FUNCTION cogo.visible_job(uuid), cogo.event_json(cogo.job_events), cogo.artifacts_of(cogo.jobs),
  cogo.job_get(uuid), cogo.job_summary(uuid, integer), cogo.job_events_page(uuid, bigint, integer),
  cogo.job_artifacts(uuid), cogo.jobs_recent(integer, timestamptz, uuid, timestamptz, text, text, text)
  TO authenticated, service_role;
-- The platform's own.
GRANT EXECUTE ON FUNCTION cogo.workers_active(integer) TO service_role;
