-- Per-minute history of the queue (metrics-history): what the event log
-- says happened in each minute, folded by the cron (cogo.fold_job_minutes,
-- functions/metrics.sql), so a read costs at most a day of minute rows plus
-- the events of the last minutes not folded yet, whatever the throughput.
-- Sparse: a minute with no event has no row.
CREATE TABLE cogo.job_minutes (
  minute      timestamptz PRIMARY KEY,
  enqueued    integer NOT NULL,
  claimed     integer NOT NULL,
  succeeded   integer NOT NULL,
  failed      integer NOT NULL,
  dead        integer NOT NULL,
  cancelled   integer NOT NULL,
  retried     integer NOT NULL,
  -- Jobs that entered the queue minus those that left it: the depth at any
  -- past minute is today's exact depth (cogo.job_counts) minus the deltas
  -- since.
  queue_delta integer NOT NULL
);

-- First claims by how long the job waited: bucket k holds waits in
-- (2^((k-1)/4), 2^(k/4)] ms, four per doubling, so a percentile of any span
-- of minutes is read to within one bucket (19%).
CREATE TABLE cogo.job_minute_waits (
  minute timestamptz NOT NULL,
  bucket smallint NOT NULL,
  jobs   integer NOT NULL,
  PRIMARY KEY (minute, bucket)
);

-- How far the fold has gone: minutes before folded_until are in the tables
-- above; every event created at or after it has a seq above seq_floor, so
-- the rest is a range scan of the event log's primary key.
CREATE TABLE cogo.job_minutes_folded (
  one          boolean PRIMARY KEY DEFAULT true CHECK (one),
  folded_until timestamptz NOT NULL,
  seq_floor    bigint NOT NULL
);
-- The first fold reads the whole log once and keeps its last day.
INSERT INTO cogo.job_minutes_folded (folded_until, seq_floor)
VALUES (date_bin('1 minute', now(), 'epoch') - interval '1 day', 0);

GRANT SELECT, INSERT, UPDATE, DELETE ON cogo.job_minutes, cogo.job_minute_waits, cogo.job_minutes_folded
  TO service_role;
-- Only the platform reads or writes them, even where a deployment grants
-- more on the schema by default.
ALTER TABLE cogo.job_minutes ENABLE ROW LEVEL SECURITY;
ALTER TABLE cogo.job_minute_waits ENABLE ROW LEVEL SECURITY;
ALTER TABLE cogo.job_minutes_folded ENABLE ROW LEVEL SECURITY;
