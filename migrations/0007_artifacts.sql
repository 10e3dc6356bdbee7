-- Artifacts: a worker holding a job's lease may upload files for it; each
-- upload is recorded once it is stored. Object paths are <job id>/<name>.

-- The job an upload URL is asked for, when the caller holds its current
-- lease (404 job_not_found, 409 not_running or lease_lost otherwise).
CREATE FUNCTION cogo.artifact_upload_grant(p_job_id uuid, p_lease_token uuid) RETURNS jsonb
  LANGUAGE plpgsql AS $$
DECLARE
  j cogo.jobs := cogo.running_job(p_job_id, p_lease_token);
BEGIN
  RETURN jsonb_build_object('jobId', j.id);
END
$$;

-- An upload stored in the bucket; a second upload to the same path
-- replaces the first.
CREATE FUNCTION cogo.artifact_record(
  p_job_id uuid, p_bucket text, p_path text, p_name text, p_size bigint, p_mime text, p_sha256 text)
RETURNS jsonb
  LANGUAGE sql AS $$
  INSERT INTO cogo.artifacts AS a (job_id, bucket, path, name, size, mime, sha256)
  VALUES (p_job_id, p_bucket, p_path, p_name, p_size, p_mime, p_sha256)
  ON CONFLICT (bucket, path) DO UPDATE
    SET size = excluded.size, mime = excluded.mime, sha256 = excluded.sha256, created_at = now()
  RETURNING cogo.artifact_json(a)
$$;

-- The artifact at (bucket, path) if the caller may see it (row level
-- security: a user sees the artifacts of their own jobs), else 404.
CREATE FUNCTION cogo.artifact_find(p_bucket text, p_path text) RETURNS jsonb
  LANGUAGE plpgsql STABLE AS $$
DECLARE
  found jsonb;
BEGIN
  SELECT cogo.artifact_json(a) INTO found FROM cogo.artifacts a WHERE a.bucket = p_bucket AND a.path = p_path;
  IF found IS NULL THEN
    RAISE SQLSTATE 'PT404' USING MESSAGE = 'artifact_not_found', DETAIL = format('no artifact %s/%s', p_bucket, p_path);
  END IF;
  RETURN found;
END
$$;

GRANT EXECUTE ON FUNCTION cogo.artifact_upload_grant(uuid, uuid), cogo.artifact_record(uuid, text, text, text, bigint, text, text)
  TO service_role;
GRANT EXECUTE ON FUNCTION cogo.artifact_find(text, text) TO authenticated, service_role;

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

CREATE OR REPLACE FUNCTION cogo.job_artifacts(p_job_id uuid) RETURNS jsonb
  LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('items', cogo.artifacts_of(cogo.visible_job(p_job_id)))
$$;

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

GRANT EXECUTE ON FUNCTION cogo.artifacts_of(cogo.jobs) TO authenticated, service_role;
