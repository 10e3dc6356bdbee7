-- Artifacts: a worker holding a job's lease may upload files for it; each
-- upload is recorded once it is stored. Object paths are <job id>/<name>.

-- An artifact as the clients read it.
CREATE OR REPLACE FUNCTION cogo.artifact_json(a cogo.artifacts) RETURNS jsonb
  LANGUAGE sql IMMUTABLE AS $$
  SELECT to_jsonb(a)
$$;

-- The job an upload link is asked for (or an upload is made to), when the
-- caller holds its current lease.
-- The signature from before executor scopes (0010) goes first.
DROP FUNCTION IF EXISTS cogo.artifact_upload_grant(uuid, uuid);
CREATE OR REPLACE FUNCTION cogo.artifact_upload_grant(p_job_id uuid, p_lease_token uuid, p_executor_id text DEFAULT NULL)
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
-- The signature from before lease-bound links (0010) goes first.
DROP FUNCTION IF EXISTS cogo.artifact_record(uuid, text, text, text, bigint, text, text);
CREATE OR REPLACE FUNCTION cogo.artifact_record(
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

-- The artifact at (bucket, path) if the caller may see it (row level
-- security: a user sees the artifacts of their own jobs), else 404.
CREATE OR REPLACE FUNCTION cogo.artifact_find(p_bucket text, p_path text) RETURNS jsonb
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

GRANT EXECUTE ON FUNCTION cogo.artifact_upload_grant(uuid, uuid, text),
  cogo.artifact_record(uuid, uuid, text, text, text, bigint, text, text)
  TO service_role;
-- Reads a user may make with their own JWT (row level security applies).
GRANT EXECUTE ON FUNCTION cogo.artifact_json(cogo.artifacts), cogo.artifact_find(text, text)
  TO authenticated, service_role;
