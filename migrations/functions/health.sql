-- The edge's health probe: one cheap round trip through PostgREST.
CREATE OR REPLACE FUNCTION cogo.health() RETURNS text
  LANGUAGE sql STABLE
  AS $$ SELECT 'ok'::text $$;
GRANT EXECUTE ON FUNCTION cogo.health() TO anon, authenticated, service_role, worker;
