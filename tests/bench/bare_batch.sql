-- bare_one.sql in batches of 50.
WITH picked AS (
  SELECT id FROM sql_alone.jobs
  WHERE status = 'queued' AND executor_id = :exec AND next_run_at <= now()
  ORDER BY priority DESC, next_run_at, created_at LIMIT 50
  FOR UPDATE SKIP LOCKED),
claimed AS (
  UPDATE sql_alone.jobs j SET status = 'running', attempts = j.attempts + 1, worker_id = 'w',
    lease_token = gen_random_uuid(), lease_until = now() + interval '60 seconds', started_at = now(), updated_at = now()
  FROM picked WHERE j.id = picked.id
  RETURNING j.id, j.lease_token)
SELECT coalesce(array_agg(id), '{}')::text AS ids, coalesce(array_agg(lease_token), '{}')::text AS tokens
FROM claimed \gset
UPDATE sql_alone.jobs j SET status = 'succeeded', finished_at = now(), updated_at = now(), lease_token = NULL,
  lease_until = NULL
FROM unnest(:ids::uuid[], :tokens::uuid[]) AS t(id, token)
WHERE j.id = t.id AND j.lease_token = t.token;
