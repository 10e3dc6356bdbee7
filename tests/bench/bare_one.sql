-- The same work as bare SQL on a table of the same columns with only its
-- primary key and the claim index: claim one with SKIP LOCKED, then mark it
-- done under its token. No event log, no counters, no other indexes.
WITH picked AS (
  SELECT id FROM sql_alone.jobs
  WHERE status = 'queued' AND executor_id = :exec AND next_run_at <= now()
  ORDER BY priority DESC, next_run_at, created_at LIMIT 1
  FOR UPDATE SKIP LOCKED)
UPDATE sql_alone.jobs j SET status = 'running', attempts = j.attempts + 1, worker_id = 'w',
  lease_token = gen_random_uuid(), lease_until = now() + interval '60 seconds', started_at = now(), updated_at = now()
FROM picked WHERE j.id = picked.id
RETURNING j.id, j.lease_token AS token \gset
UPDATE sql_alone.jobs SET status = 'succeeded', finished_at = now(), updated_at = now(), lease_token = NULL,
  lease_until = NULL
WHERE id = :id::uuid AND lease_token = :token::uuid;
