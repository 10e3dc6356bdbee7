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

-- Platform state. Only the platform writes here; each later table and
-- function grants exactly the roles that need it.
CREATE SCHEMA IF NOT EXISTS cogo;
GRANT USAGE ON SCHEMA cogo TO anon, authenticated, service_role, worker;
ALTER DEFAULT PRIVILEGES IN SCHEMA cogo REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- User-owned application data lives in public, guarded by row level security.
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role, worker;

-- The edge's health probe: one cheap round trip through PostgREST.
CREATE FUNCTION cogo.health() RETURNS text
  LANGUAGE sql STABLE
  AS $$ SELECT 'ok'::text $$;
GRANT EXECUTE ON FUNCTION cogo.health() TO anon, authenticated, service_role, worker;
