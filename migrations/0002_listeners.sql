-- Who is listening, so that a change costs nothing when nobody is.
-- The functions that change jobs (functions/jobs.sql) consult these tables
-- after their change and name, in their answer, the job hubs and claim hubs
-- the edge must ring (functions/listeners.sql).

-- Jobs with live event-stream subscribers: a job's hub (a Durable Object)
-- records its job here while it holds subscribers, and renews the row
-- before it lapses. A lapsed row is as good as none.
CREATE TABLE cogo.job_watchers (
  job_id        uuid PRIMARY KEY,
  watched_until timestamptz NOT NULL
);

-- Executors with long-polling claims waiting: an executor's claim hub
-- records it here while it holds waiting claims.
CREATE TABLE cogo.claim_waiters (
  executor_id   text PRIMARY KEY,
  waiting_until timestamptz NOT NULL
);

GRANT SELECT, INSERT, UPDATE, DELETE ON cogo.job_watchers, cogo.claim_waiters TO service_role;
-- Only the platform reads or writes them, even where a deployment grants
-- more on the schema by default.
ALTER TABLE cogo.job_watchers ENABLE ROW LEVEL SECURITY;
ALTER TABLE cogo.claim_waiters ENABLE ROW LEVEL SECURITY;
