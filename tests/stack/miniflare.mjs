// Serves the release worker (functions/build) in workerd through Miniflare,
// the engine of `wrangler dev`: the same bindings as wrangler.toml, with
// local Durable Objects, a local R2 bucket and the dashboard's assets, for
// the black-box tests.
// Reads one JSON line on stdin ({build, port, vars, bucket}), prints {"url"} once
// listening, and shuts workerd down when stdin closes (the test process
// ended, however it ended).
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { Miniflare, Log, LogLevel, convertV4MiniflareOptions } from "miniflare";

const lines = createInterface({ input: process.stdin });
const [first] = await lines[Symbol.asyncIterator]().next().then((r) => [r.value]);
const { build, port, vars, bucket = true } = JSON.parse(first);

// The dashboard's static assets, from the directory wrangler.toml's [assets]
// names, served ahead of the worker as `wrangler dev` serves them.
const root = new URL("../..", import.meta.url).pathname;
const assetsDir = readFileSync(`${root}wrangler.toml`, "utf8").match(/^\[assets\][^[]*?^directory\s*=\s*"([^"]+)"/m)?.[1];
if (!assetsDir) throw new Error("wrangler.toml names no [assets] directory");

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
    assets: { directory: `${root}${assetsDir}`, routerConfig: { has_user_worker: true } },
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
