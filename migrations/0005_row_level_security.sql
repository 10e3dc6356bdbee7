-- Reads on behalf of a user go to PostgREST with the user's own JWT, so
-- PostgreSQL, not the edge, decides what they see: their own jobs and the
-- events and artifacts of those jobs. The platform (service_role) bypasses
-- row level security.
ALTER TABLE cogo.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE cogo.job_events ENABLE ROW LEVEL SECURITY;

CREATE POLICY jobs_owner_reads ON cogo.jobs FOR SELECT TO authenticated
  USING (owner_id = current_setting('request.jwt.claims', true)::json->>'sub');
CREATE POLICY job_events_owner_reads ON cogo.job_events FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM cogo.jobs j WHERE j.id = job_id));

GRANT SELECT ON cogo.jobs, cogo.job_events TO authenticated;
