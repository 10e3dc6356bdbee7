-- Cheaper writes per job on cogo.jobs (measured by the bench's SQL-alone
-- section, tests/src/bin/bench/sql_alone.rs).

-- Most jobs have no idempotency key, yet every new version of every row
-- (each claim, result, retry) went into this unique index as a NULL key.
-- Only keyed jobs need it; cogo.enqueue names the predicate in its ON
-- CONFLICT so the partial index is the arbiter.
DROP INDEX cogo.jobs_idempotency_idx;
CREATE UNIQUE INDEX jobs_idempotency_idx ON cogo.jobs (idempotency_scope, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- Room on each page for a row's next version: an update that changes no
-- indexed column (progress, a cancel request) is then a HOT update, with no
-- index entries, instead of moving the row to another page and adding an
-- entry to every index. New pages only; a rewrite (VACUUM FULL) applies it
-- to old ones.
ALTER TABLE cogo.jobs SET (fillfactor = 80);
