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

-- The event log is written here and only here, in the transaction that
-- changed the job, so its order (seq) is the commit order of changes.
CREATE FUNCTION cogo.jobs_log_event() RETURNS trigger
  LANGUAGE plpgsql AS $$
DECLARE
  kind text;
  data jsonb := '{}'::jsonb;
BEGIN
  IF TG_OP = 'INSERT' THEN
    kind := 'created';
    data := jsonb_build_object('type', NEW.type, 'executor_id', NEW.executor_id, 'priority', NEW.priority);
  ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
    kind := CASE
      WHEN NEW.status = 'running' THEN 'claimed'
      WHEN NEW.status = 'succeeded' THEN 'succeeded'
      WHEN NEW.status = 'failed' THEN 'failed'
      WHEN NEW.status = 'dead' THEN 'dead_lettered'
      WHEN NEW.status = 'cancelled' THEN 'cancelled'
      WHEN NEW.status = 'queued' AND OLD.status = 'running' AND NEW.lost_leases > OLD.lost_leases THEN 'lease_expired'
      WHEN NEW.status = 'queued' AND OLD.status = 'running' THEN 'retry_scheduled'
      ELSE 'requeued'
    END;
    data := jsonb_build_object('status', NEW.status, 'attempt', NEW.attempts);
    IF kind = 'claimed' THEN
      data := data || jsonb_build_object('worker_id', NEW.worker_id, 'lease_until', NEW.lease_until);
    ELSIF kind IN ('retry_scheduled', 'lease_expired') THEN
      data := data || jsonb_build_object('next_run_at', NEW.next_run_at, 'error', NEW.error);
    ELSIF kind IN ('failed', 'dead_lettered') THEN
      data := data || jsonb_build_object('error', NEW.error);
    END IF;
  ELSIF NEW.progress IS DISTINCT FROM OLD.progress OR NEW.current_step IS DISTINCT FROM OLD.current_step THEN
    kind := 'progress';
    data := jsonb_build_object('progress', NEW.progress, 'step', NEW.current_step);
  ELSE
    RETURN NEW;
  END IF;
  INSERT INTO cogo.job_events (job_id, event_type, payload) VALUES (NEW.id, kind, data);
  RETURN NEW;
END
$$;

CREATE TRIGGER jobs_log_event AFTER INSERT OR UPDATE ON cogo.jobs
  FOR EACH ROW EXECUTE FUNCTION cogo.jobs_log_event();
