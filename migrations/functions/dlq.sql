-- The dead-letter queue: listing the letters and replaying them as new jobs.

CREATE OR REPLACE FUNCTION cogo.dead_letter_json(d cogo.job_dead_letters) RETURNS jsonb
  LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('id', d.id, 'job_id', d.job_id, 'type', d.type, 'executor_id', d.executor_id,
                            'reason', d.reason, 'error', d.error, 'errors', d.errors, 'payload', d.payload,
                            'attempts', d.attempts, 'created_at', d.dead_at, 'retries', d.retries,
                            'retried_at', d.retried_at, 'retried_job_id', d.retried_job_id)
$$;

-- Dead letters newest first, paged like jobs_recent over (dead_at, id);
-- p_from <= dead_at < p_to.
CREATE OR REPLACE FUNCTION cogo.dlq_list(
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
-- letter retried twice still makes one job. The key lives in the
-- platform's own scope, so no caller can take it by assigning with the same
-- key first.
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
  RETURN cogo.with_doorbells(
    jsonb_build_object('dlqId', d.id, 'deadJobId', d.job_id, 'jobId', outcome -> 'jobId', 'retried', true),
    outcome -> 'doorbells');
END
$$;

CREATE OR REPLACE FUNCTION cogo.dlq_retry(p_dlq_id bigint) RETURNS jsonb
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
-- oldest first; with p_dry_run, only says which. The replays' doorbells
-- are gathered at the top.
CREATE OR REPLACE FUNCTION cogo.dlq_retry_matching(
  p_max integer, p_dry_run boolean, p_type text DEFAULT NULL, p_executor_id text DEFAULT NULL,
  p_from timestamptz DEFAULT NULL, p_to timestamptz DEFAULT NULL)
RETURNS jsonb
  LANGUAGE plpgsql AS $$
DECLARE
  d cogo.job_dead_letters;
  item jsonb;
  items jsonb := '[]'::jsonb;
  doorbells jsonb;
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
    item := CASE WHEN p_dry_run THEN jsonb_build_object('dlqId', d.id, 'deadJobId', d.job_id)
                 ELSE cogo.retry_letter(d) END;
    doorbells := cogo.merge_doorbells(doorbells, item -> 'doorbells');
    items := items || (item - 'doorbells');
  END LOOP;
  RETURN cogo.with_doorbells(
    jsonb_build_object('dryRun', p_dry_run, 'count', jsonb_array_length(items), 'items', items), doorbells);
END
$$;

GRANT EXECUTE ON FUNCTION cogo.dead_letter_json(cogo.job_dead_letters),
  cogo.dlq_list(integer, timestamptz, bigint, timestamptz, text, text, timestamptz, timestamptz),
  cogo.retry_letter(cogo.job_dead_letters), cogo.dlq_retry(bigint),
  cogo.dlq_retry_matching(integer, boolean, text, text, timestamptz, timestamptz)
  TO service_role;
