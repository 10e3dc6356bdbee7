-- The job queue: jobs, their committed event log, dead letters, worker
-- heartbeats and idempotency records. Every state change is one SQL
-- function (one transaction, one PostgREST round trip).

CREATE TABLE cogo.jobs (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  type            text NOT NULL CHECK (length(type) BETWEEN 1 AND 200),
  status          text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'dead', 'cancelled')),
  executor_id     text NOT NULL CHECK (length(executor_id) BETWEEN 1 AND 200),
  payload         jsonb NOT NULL DEFAULT '{}'::jsonb,
  result          jsonb,
  error           jsonb,
  -- Every failed attempt's error, oldest first: [{attempt, error, at}].
  errors          jsonb NOT NULL DEFAULT '[]'::jsonb,
  idempotency_key text UNIQUE,
  priority        integer NOT NULL DEFAULT 0,
  attempts        integer NOT NULL DEFAULT 0,
  max_attempts    integer NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 100),
  backoff_base_ms integer NOT NULL DEFAULT 500 CHECK (backoff_base_ms BETWEEN 0 AND 3600000),
  backoff_cap_ms  integer NOT NULL DEFAULT 60000 CHECK (backoff_cap_ms BETWEEN 0 AND 86400000),
  lost_leases     integer NOT NULL DEFAULT 0,
  next_run_at     timestamptz NOT NULL DEFAULT now(),
  worker_id       text,
  lease_owner     text,
  lease_until     timestamptz,
  lease_token     uuid,
  progress        jsonb,
  current_step    text,
  cancel_requested boolean NOT NULL DEFAULT false,
  owner_id        text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  started_at      timestamptz,
  finished_at     timestamptz
);

-- The claim query: queued jobs of one executor, in claim order.
CREATE INDEX jobs_claim_idx ON cogo.jobs (executor_id, priority DESC, next_run_at, created_at)
  WHERE status = 'queued';
-- The reaper: running jobs by lease expiry.
CREATE INDEX jobs_lease_idx ON cogo.jobs (lease_until) WHERE status = 'running';
-- Listings, newest first, with a stable tie-break.
CREATE INDEX jobs_recent_idx ON cogo.jobs (created_at DESC, id DESC);
CREATE INDEX jobs_owner_idx ON cogo.jobs (owner_id, created_at DESC) WHERE owner_id IS NOT NULL;

CREATE TABLE cogo.job_events (
  seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id     uuid NOT NULL REFERENCES cogo.jobs (id) ON DELETE CASCADE,
  event_type text NOT NULL,
  payload    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_events_job_idx ON cogo.job_events (job_id, seq);

CREATE TABLE cogo.job_dead_letters (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id         uuid NOT NULL UNIQUE REFERENCES cogo.jobs (id) ON DELETE CASCADE,
  type           text NOT NULL,
  executor_id    text NOT NULL,
  payload        jsonb NOT NULL,
  reason         text NOT NULL,
  error          jsonb,
  errors         jsonb NOT NULL DEFAULT '[]'::jsonb,
  attempts       integer NOT NULL,
  dead_at        timestamptz NOT NULL DEFAULT now(),
  retries        integer NOT NULL DEFAULT 0,
  retried_at     timestamptz,
  retried_job_id uuid REFERENCES cogo.jobs (id) ON DELETE SET NULL
);
CREATE INDEX job_dead_letters_dead_at_idx ON cogo.job_dead_letters (dead_at DESC, id DESC);

CREATE TABLE cogo.worker_heartbeats_v2 (
  worker_id    text PRIMARY KEY,
  executor_id  text NOT NULL,
  agent_id     text,
  status       text NOT NULL,
  version      text,
  running      integer NOT NULL DEFAULT 0,
  capacity     integer,
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  metadata     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX worker_heartbeats_seen_idx ON cogo.worker_heartbeats_v2 (last_seen_at DESC);

CREATE TABLE cogo.idempotency_keys (
  key             text NOT NULL,
  principal       text NOT NULL,
  route           text NOT NULL,
  request_hash    text NOT NULL,
  state           text NOT NULL DEFAULT 'in_flight' CHECK (state IN ('in_flight', 'done')),
  response_status integer,
  response_body   jsonb,
  created_at      timestamptz NOT NULL DEFAULT now(),
  expires_at      timestamptz NOT NULL,
  PRIMARY KEY (principal, route, key)
);
CREATE INDEX idempotency_keys_expiry_idx ON cogo.idempotency_keys (expires_at);

-- The event log is written here and only here, in the statement that
-- changed the jobs, so its order (seq) is the commit order of changes.
-- Statement-level triggers over transition tables: one INSERT per
-- statement, however many jobs a batch claims or completes.
CREATE FUNCTION cogo.jobs_log_created() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cogo.job_events (job_id, event_type, payload)
  SELECT n.id, 'created', jsonb_build_object('type', n.type, 'executor_id', n.executor_id, 'priority', n.priority)
  FROM new_jobs n;
  RETURN NULL;
END
$$;

CREATE FUNCTION cogo.jobs_log_changed() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cogo.job_events (job_id, event_type, payload)
  SELECT e.id, e.kind,
    CASE
      WHEN e.kind = 'claimed' THEN jsonb_build_object('status', e.status, 'attempt', e.attempts,
                                                      'worker_id', e.worker_id, 'lease_until', e.lease_until)
      WHEN e.kind IN ('retry_scheduled', 'lease_expired') THEN jsonb_build_object('status', e.status,
                                      'attempt', e.attempts, 'next_run_at', e.next_run_at, 'error', e.error)
      WHEN e.kind IN ('failed', 'dead_lettered') THEN jsonb_build_object('status', e.status, 'attempt', e.attempts,
                                                                         'error', e.error)
      WHEN e.kind = 'progress' THEN jsonb_build_object('progress', e.progress, 'step', e.current_step)
      ELSE jsonb_build_object('status', e.status, 'attempt', e.attempts)
    END
  FROM (
    SELECT n.*,
      CASE
        WHEN n.status IS NOT DISTINCT FROM o.status THEN
          CASE WHEN n.progress IS DISTINCT FROM o.progress OR n.current_step IS DISTINCT FROM o.current_step
               THEN 'progress' END
        WHEN n.status = 'running' THEN 'claimed'
        WHEN n.status = 'succeeded' THEN 'succeeded'
        WHEN n.status = 'failed' THEN 'failed'
        WHEN n.status = 'dead' THEN 'dead_lettered'
        WHEN n.status = 'cancelled' THEN 'cancelled'
        WHEN n.status = 'queued' AND o.status = 'running' AND n.lost_leases > o.lost_leases THEN 'lease_expired'
        WHEN n.status = 'queued' AND o.status = 'running' THEN 'retry_scheduled'
        ELSE 'requeued'
      END AS kind
    FROM new_jobs n JOIN old_jobs o ON o.id = n.id
  ) e
  WHERE e.kind IS NOT NULL
  ORDER BY e.id;
  RETURN NULL;
END
$$;

CREATE TRIGGER jobs_log_created AFTER INSERT ON cogo.jobs
  REFERENCING NEW TABLE AS new_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION cogo.jobs_log_created();
CREATE TRIGGER jobs_log_changed AFTER UPDATE ON cogo.jobs
  REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION cogo.jobs_log_changed();

-- A queue table churns: claimed and finished rows leave dead entries at the
-- head of the claim index. Vacuum it after a few thousand changes instead
-- of a fraction of its size.
ALTER TABLE cogo.jobs SET (
  autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
  autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 20000,
  autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
