-- The event log is written only by the triggers on cogo.jobs, for the row a
-- statement just changed, so every event's job exists by construction. The
-- foreign key checked it again, one row lock per event: about 40% of the
-- cost of writing a batch's events (bench, SQL alone). Deleting a job still
-- deletes its events: a statement-level trigger on cogo.jobs does it
-- (functions/jobs.sql), once per DELETE instead of once per row.
ALTER TABLE cogo.job_events DROP CONSTRAINT job_events_job_id_fkey;
