// Serves the release worker (functions/build) in workerd through Miniflare,
// the engine of `wrangler dev`: the same bindings as wrangler.toml, with
// local Durable Objects and a local R2 bucket, for the black-box tests.
// Reads one JSON line on stdin ({build, port, vars, bucket}), prints {"url"} once
// listening, and shuts workerd down when stdin closes (the test process
// ended, however it ended).
import { createInterface } from "node:readline";
import { Miniflare, Log, LogLevel, convertV4MiniflareOptions } from "miniflare";

const lines = createInterface({ input: process.stdin });
const [first] = await lines[Symbol.asyncIterator]().next().then((r) => [r.value]);
const { build, port, vars, bucket = true } = JSON.parse(first);

// The classic (v4) option shape, converted for this Miniflare.
const mf = new Miniflare(
  convertV4MiniflareOptions({
    host: "127.0.0.1",
    port,
    log: new Log(LogLevel.WARN),
    // No fetching of a real `request.cf` from the network.
    cf: false,
    // `GET /cdn-cgi/local/scheduled` runs the cron handler to its end (as
    // `wrangler dev --test-scheduled` does), so tests need not wait a minute.
    unsafeTriggerHandlers: true,
    modulesRoot: build,
    modules: [
      { type: "ESModule", path: `${build}/index.js` },
      { type: "CompiledWasm", path: `${build}/index_bg.wasm` },
    ],
    compatibilityDate: "2025-09-01",
    bindings: vars,
    durableObjects: { RATE_LIMITER: "RateLimiter", SIGNATURES: "SignatureLedger", JOB_HUB: "JobHub", CHANNEL_HUB: "ChannelHub", CLAIM_HUB: "ClaimHub" },
    // Without it, as a deployment with no bucket bound.
    r2Buckets: bucket ? { ARTIFACTS: "cogo-artifacts" } : {},
  }),
);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await mf.dispose().catch(() => {});
  process.exit(0);
}
process.stdin.on("end", stop);
lines.on("close", stop);
process.on("SIGTERM", stop);

const url = await mf.ready;
console.log(JSON.stringify({ url: url.toString() }));
