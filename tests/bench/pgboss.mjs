// The bench's peer: pg-boss running the same loop shape as the bench's own
// loops, against the same PostgreSQL, in a schema of its own made afresh.
// Seeds `jobs` jobs (untimed), then `loops` concurrent loops of fetch
// `batch` + complete them, until the queue is empty (timed).
// Prints one line of JSON: {jobs, seconds, fetchP50Ms}.
//
//   node tests/bench/pgboss.mjs <pg-boss install dir> <postgres URI> <jobs> <batch> <loops>
//
// pg-boss is not a project dependency: scripts/bench installs it under
// target/ (tests/src/bin/bench/pgboss.rs).
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';

const [dir, uri, jobsArg, batchArg, loopsArg] = process.argv.slice(2);
const [jobs, batch, loops] = [jobsArg, batchArg, loopsArg].map(Number);
if (!dir || !uri || !(jobs > 0 && batch > 0 && loops > 0)) {
  console.error('usage: pgboss.mjs <install dir> <postgres uri> <jobs> <batch> <loops>');
  process.exit(2);
}
// Resolved from the install folder, not from this file's place in the repo.
const require = createRequire(`${dir}/`);
const { PgBoss } = await import(pathToFileURL(require.resolve('pg-boss')));
const pg = require('pg');

const schema = 'pgboss_bench';
const queue = 'bench';

// Fresh tables every run, as the bench's own loops get.
const admin = new pg.Client({ connectionString: uri });
await admin.connect();
await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);

// A pool of 10, as the gateway's. No supervision or cron scheduling: their
// timers would run beside the loop, and the stack's reaper does not run
// during the bench either.
const boss = new PgBoss({ connectionString: uri, schema, max: 10, supervise: false, schedule: false });
boss.on('error', (e) => {
  console.error(e);
  process.exit(1);
});
await boss.start();
await boss.createQueue(queue);
const chunk = 10_000;
for (let from = 0; from < jobs; from += chunk) {
  const rows = [];
  for (let i = from; i < Math.min(jobs, from + chunk); i++) rows.push({ data: { i } });
  await boss.insert(queue, rows);
}
// As the bench does after seeding its own: fresh statistics, and no
// checkpoint of the seeding's writes left to land inside the timed part.
await admin.query(`ANALYZE ${schema}.job`);
await admin.query('CHECKPOINT');

const fetchMs = [];
let done = 0;
const loop = async () => {
  for (;;) {
    const t = performance.now();
    const got = await boss.fetch(queue, { batchSize: batch });
    fetchMs.push(performance.now() - t);
    if (got.length === 0) return;
    await boss.complete(queue, batch === 1 ? got[0].id : got.map((j) => j.id));
    done += got.length;
  }
};
const start = performance.now();
await Promise.all(Array.from({ length: loops }, loop));
const seconds = (performance.now() - start) / 1000;

await boss.stop({ graceful: false, close: true });
// Nothing of this run is left for autovacuum to work on during the next.
await admin.query(`DROP SCHEMA ${schema} CASCADE`);
await admin.end();
fetchMs.sort((a, b) => a - b);
const fetchP50Ms = fetchMs[Math.round((fetchMs.length - 1) * 0.5)];
console.log(JSON.stringify({ jobs: done, seconds, fetchP50Ms }));
