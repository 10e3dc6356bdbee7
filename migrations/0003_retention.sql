-- Retention (functions/retention.sql) deletes finished jobs in batches.
-- Deleting a job makes PostgreSQL null job_dead_letters.retried_job_id where
-- it names that job (ON DELETE SET NULL), one lookup per deleted job, and
-- the sweep skips jobs a letter names as its replay: without this index
-- both scan every letter (1.8 s for a batch of 1,000 jobs over 20,000
-- letters, 27 ms with it). Only replayed letters have a value, hence partial.
CREATE INDEX job_dead_letters_retried_job_idx ON cogo.job_dead_letters (retried_job_id)
  WHERE retried_job_id IS NOT NULL;
