-- replaces: 0001_roles_and_schema.sql 0002_jobs.sql 0003_job_functions.sql 0004_idempotency.sql 0005_row_level_security.sql 0006_read_api.sql 0007_artifacts.sql 0008_job_event_streams.sql 0009_project_updates.sql 0010_tenant_scopes.sql 0011_project_owners.sql
-- amends: cf5e62b66c089f2f6c98d638788fc50061fcf97255b33514826310db0cf1aecd
--
-- The schema as the eleven files above left it, without their functions and
-- triggers (those are in functions/). A database whose ledger has all eleven
-- records this file without running it (migrations/README.md).

-- Roles as Supabase defines them, plus `worker` for job executors. On a
-- Supabase project the first three already exist; create only what is missing.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
    CREATE ROLE anon NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
    -- The platform acts for everyone: row level security does not apply to it.
    CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'worker') THEN
    CREATE ROLE worker NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticator') THEN
    -- PostgREST logs in as authenticator and switches to the request's role.
    CREATE ROLE authenticator LOGIN NOINHERIT;
  END IF;
END
$$;

GRANT anon, authenticated, service_role, worker TO authenticator;

-- Platform state. Only the platform writes here; each table and function
-- grants exactly the roles that need it.
CREATE SCHEMA IF NOT EXISTS cogo;
GRANT USAGE ON SCHEMA cogo TO anon, authenticated, service_role, worker;
ALTER DEFAULT PRIVILEGES IN SCHEMA cogo REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- User-owned application data lives in public, guarded by row level security.
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role, worker;

------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------

-- The job queue: jobs, their committed event log, dead letters, worker
-- heartbeats and idempotency records. Every state change is one SQL
-- function (one transaction, one PostgREST round trip; functions/jobs.sql).
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
  -- Unique per idempotency_scope (jobs_idempotency_idx), not globally.
  idempotency_key text,
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
  finished_at     timestamptz,
  -- Tenancy: every name a caller sends is resolved within that caller's
  -- scope before anything is read or written (DESIGN.md section 7). Job
  -- idempotency keys are unique per scope: the edge passes
  -- "<endpoint>|<caller>" for keys a caller chooses, and keys the platform
  -- derives live in scopes starting with "platform|", which no caller id can
  -- produce (caller ids start with a role name). Older rows keep scope ''.
  idempotency_scope text NOT NULL DEFAULT ''
);

-- A queue table churns: claimed and finished rows leave dead entries at the
-- head of the claim index. Vacuum it after a few thousand changes instead
-- of a fraction of its size.
ALTER TABLE cogo.jobs SET (
  autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
  autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 20000,
  autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);

-- The event log is written only by the triggers on cogo.jobs
-- (functions/jobs.sql), in the statement that changed the jobs, so its
-- order (seq) is the commit order of changes.
CREATE TABLE cogo.job_events (
  seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id     uuid NOT NULL REFERENCES cogo.jobs (id) ON DELETE CASCADE,
  event_type text NOT NULL,
  payload    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);

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

CREATE TABLE cogo.worker_heartbeats_v2 (
  worker_id    text PRIMARY KEY,
  executor_id  text NOT NULL,
  agent_id     text,
  status       text NOT NULL,
  version      text,
  running      integer NOT NULL DEFAULT 0,
  capacity     integer,
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- A worker's presence row belongs to the caller that first wrote it:
  -- another caller's heartbeat for the same worker id is refused (403), so
  -- no one can overwrite or fake another worker's presence. The platform
  -- (principal NULL) may write any row and never takes one over.
  principal    text
);

-- Idempotency-Key for every POST: the first request with a key runs and
-- its response is stored; a repeat gets the stored response; the same key
-- with another body, or while the first is still running, is refused.
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

-- Files a job produced, stored in a bucket. Object paths are
-- <job id>/<name>; a worker holding a job's lease may upload files for it,
-- and each upload is recorded once it is stored.
CREATE TABLE cogo.artifacts (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  job_id     uuid NOT NULL REFERENCES cogo.jobs (id) ON DELETE CASCADE,
  bucket     text NOT NULL DEFAULT 'artifacts',
  path       text NOT NULL,
  name       text NOT NULL,
  size       bigint CHECK (size >= 0),
  mime       text,
  sha256     text,
  url        text,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (bucket, path)
);

-- Exact job counts without counting a million rows: totals per (type,
-- executor, status), kept by statement-level triggers (functions/metrics.sql).
-- Each database session adds its changes to rows of its own (shard = its
-- backend pid), so concurrent transactions never wait on one another's
-- counters and cannot deadlock on them. The cron folds the rows of ended
-- sessions into shard 0.
CREATE TABLE cogo.job_counts (
  shard       integer NOT NULL,
  type        text NOT NULL,
  executor_id text NOT NULL,
  status      text NOT NULL,
  jobs        bigint NOT NULL,
  lost_leases bigint NOT NULL,
  PRIMARY KEY (shard, type, executor_id, status)
);

-- figma-compat's results for a project reach the application tables through
-- an outbox: the request writes cogo.project_updates in one statement, and a
-- projection (the cron, and right after the request) materialises the rows
-- into public.projects, public.pages and public.components, idempotently.
-- A failing row is retried after 2^retries minutes.

-- figma-compat projects have owners. The first caller to use a projectId
-- owns it (a user by their JWT sub, which row level security compares
-- owner_id with; a signed agent or a worker by its principal id); anyone
-- else gets 404 and writes nothing. The platform may write into any
-- project; a project it creates first has no owner, and only the platform
-- writes into it.
CREATE TABLE IF NOT EXISTS public.projects (
  id         uuid PRIMARY KEY,
  name       text,
  owner_id   text,
  source     text NOT NULL DEFAULT 'figma-compat',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- CreateGo numbers the pages of a project; figma_id is the Figma page the
-- numbers stay attached to.
CREATE TABLE IF NOT EXISTS public.pages (
  project_id uuid NOT NULL REFERENCES public.projects (id) ON DELETE CASCADE,
  page_id    integer NOT NULL,
  figma_id   text NOT NULL,
  name       text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, page_id),
  UNIQUE (project_id, figma_id)
);

-- CreateGo component rows, as the IDE and runtime read them.
CREATE TABLE IF NOT EXISTS public.components (
  project_id    uuid NOT NULL,
  page_id       integer NOT NULL,
  id            text NOT NULL,
  name          text,
  type          text NOT NULL,
  dx            double precision NOT NULL DEFAULT 0,
  dy            double precision NOT NULL DEFAULT 0,
  width         double precision NOT NULL DEFAULT 0,
  height        double precision NOT NULL DEFAULT 0,
  version       text NOT NULL DEFAULT '1.0',
  index_in_page integer NOT NULL,
  options       jsonb NOT NULL DEFAULT '{}'::jsonb,
  group_id      text,
  is_lib_comp   boolean,
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, page_id, id),
  FOREIGN KEY (project_id, page_id) REFERENCES public.pages (project_id, page_id) ON DELETE CASCADE
);

-- A project that already has these tables (an IDE's CreateGo schema) keeps
-- them and their rows: only what the projection writes and what its upserts
-- need is added where missing.
ALTER TABLE public.projects
  ADD COLUMN IF NOT EXISTS name text,
  ADD COLUMN IF NOT EXISTS owner_id text,
  ADD COLUMN IF NOT EXISTS source text NOT NULL DEFAULT 'figma-compat',
  ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE public.pages
  ADD COLUMN IF NOT EXISTS figma_id text,
  ADD COLUMN IF NOT EXISTS name text,
  ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE public.components
  ADD COLUMN IF NOT EXISTS name text,
  ADD COLUMN IF NOT EXISTS dx double precision NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS dy double precision NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS width double precision NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS height double precision NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS version text NOT NULL DEFAULT '1.0',
  ADD COLUMN IF NOT EXISTS options jsonb NOT NULL DEFAULT '{}'::jsonb,
  ADD COLUMN IF NOT EXISTS group_id text,
  ADD COLUMN IF NOT EXISTS is_lib_comp boolean,
  ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
-- The keys the upserts name, under the names a new table's constraints get
-- (so on a new database these change nothing).
CREATE UNIQUE INDEX IF NOT EXISTS projects_pkey ON public.projects (id);
CREATE UNIQUE INDEX IF NOT EXISTS pages_pkey ON public.pages (project_id, page_id);
CREATE UNIQUE INDEX IF NOT EXISTS pages_project_id_figma_id_key ON public.pages (project_id, figma_id);
CREATE UNIQUE INDEX IF NOT EXISTS components_pkey ON public.components (project_id, page_id, id);

CREATE TABLE cogo.project_updates (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  occurred_at     timestamptz NOT NULL DEFAULT now(),
  project_uuid    uuid NOT NULL,
  project_id      text NOT NULL,
  source          text NOT NULL DEFAULT 'figma-compat',
  event_type      text NOT NULL CHECK (event_type IN ('project.upsert', 'page.upsert', 'component.upsert',
                                                      'actionflow.upsert', 'symbol.upsert')),
  payload         jsonb NOT NULL,
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'failed', 'done')),
  retries         integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  trace_id        text,
  owner_id        text,
  last_error      text
);

------------------------------------------------------------------------------
-- Indexes
------------------------------------------------------------------------------

-- The claim query: queued jobs of one executor, in claim order.
CREATE INDEX jobs_claim_idx ON cogo.jobs (executor_id, priority DESC, next_run_at, created_at)
  WHERE status = 'queued';
-- The reaper: running jobs by lease expiry.
CREATE INDEX jobs_lease_idx ON cogo.jobs (lease_until) WHERE status = 'running';
-- Listings, newest first, with a stable tie-break.
CREATE INDEX jobs_recent_idx ON cogo.jobs (created_at DESC, id DESC);
CREATE INDEX job_events_job_idx ON cogo.job_events (job_id, seq);
CREATE INDEX job_dead_letters_dead_at_idx ON cogo.job_dead_letters (dead_at DESC, id DESC);
CREATE INDEX worker_heartbeats_seen_idx ON cogo.worker_heartbeats_v2 (last_seen_at DESC);
CREATE INDEX idempotency_keys_expiry_idx ON cogo.idempotency_keys (expires_at);
CREATE INDEX artifacts_job_idx ON cogo.artifacts (job_id, created_at, id);
-- A user's listing walks their own jobs newest first, with the same
-- tie-break as everyone else's.
CREATE INDEX jobs_owner_idx ON cogo.jobs (owner_id, created_at DESC, id DESC) WHERE owner_id IS NOT NULL;
-- Metrics: the recently finished, and the oldest still waiting. Partial,
-- so a job enters each index once rather than on every update.
CREATE INDEX jobs_finished_idx ON cogo.jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_queued_age_idx ON cogo.jobs (created_at) WHERE status = 'queued';
-- Letters not yet retried: the dead-letter depth.
CREATE INDEX job_dead_letters_pending_idx ON cogo.job_dead_letters (dead_at) WHERE retried_at IS NULL;
CREATE INDEX project_updates_due_idx ON cogo.project_updates (next_attempt_at, id) WHERE status IN ('pending', 'failed');
-- Job idempotency keys, unique per scope (see cogo.jobs.idempotency_scope).
CREATE UNIQUE INDEX jobs_idempotency_idx ON cogo.jobs (idempotency_scope, idempotency_key);

------------------------------------------------------------------------------
-- Row level security
------------------------------------------------------------------------------

-- Reads on behalf of a user go to PostgREST with the user's own JWT, so
-- PostgreSQL, not the edge, decides what they see: their own jobs and the
-- events and artifacts of those jobs, their own projects and the pages and
-- components of those. The platform (service_role) bypasses row level
-- security. The policies call no function of functions/ (those are applied
-- after this file): only current_setting and subqueries on the tables.
ALTER TABLE cogo.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE cogo.job_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE cogo.artifacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.pages ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.components ENABLE ROW LEVEL SECURITY;

CREATE POLICY jobs_owner_reads ON cogo.jobs FOR SELECT TO authenticated
  USING (owner_id = current_setting('request.jwt.claims', true)::json->>'sub');
CREATE POLICY job_events_owner_reads ON cogo.job_events FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM cogo.jobs j WHERE j.id = job_id));
CREATE POLICY artifacts_owner_reads ON cogo.artifacts FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM cogo.jobs j WHERE j.id = job_id));
CREATE POLICY projects_owner_reads ON public.projects FOR SELECT TO authenticated
  USING (owner_id = current_setting('request.jwt.claims', true)::json->>'sub');
CREATE POLICY pages_owner_reads ON public.pages FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM public.projects p WHERE p.id = project_id));
CREATE POLICY components_owner_reads ON public.components FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM public.projects p WHERE p.id = project_id));

------------------------------------------------------------------------------
-- Grants (in the order the replaced files made them, so each table's
-- privileges list reads the same on old and new databases)
------------------------------------------------------------------------------

-- Only the platform writes the queue's tables; the edge checks who may act
-- on whose behalf.
GRANT SELECT, INSERT, UPDATE, DELETE
  ON cogo.jobs, cogo.job_events, cogo.job_dead_letters, cogo.worker_heartbeats_v2, cogo.idempotency_keys
  TO service_role;
-- A user reads their own jobs and events (row level security applies).
GRANT SELECT ON cogo.jobs, cogo.job_events TO authenticated;
GRANT SELECT ON cogo.artifacts TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON cogo.artifacts TO service_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON cogo.job_counts TO service_role;
GRANT SELECT ON public.projects, public.pages, public.components TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.projects, public.pages, public.components TO service_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON cogo.project_updates TO service_role;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA cogo TO service_role;
