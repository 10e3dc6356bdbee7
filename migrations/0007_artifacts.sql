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
