// The dashboard in a real browser (Debian's chromium driven by
// playwright-core) against the real stack: one scenario per run, named on
// the command line, with its configuration as one JSON line on stdin
// ({baseUrl, tokens: {service, worker, user, otherUser}, outDir, axe}).
// It acts through the public API where a worker or another client would,
// waits on conditions with deadlines (never fixed sleeps), saves
// screenshots, runs axe-core, and prints one JSON line of what it saw for
// tests/tests/dashboard.rs to assert.
import { createInterface } from "node:readline";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import net from "node:net";
import { deflateSync, crc32 } from "node:zlib";
import { chromium } from "playwright-core";

const scenario = process.argv[2];
const lines = createInterface({ input: process.stdin });
const config = JSON.parse((await lines[Symbol.asyncIterator]().next()).value);
lines.close();
const { baseUrl, tokens, outDir } = config;
mkdirSync(outDir, { recursive: true });
// A failure screenshot of an earlier run is not this run's.
rmSync(join(outDir, `${scenario}-failure.png`), { force: true });

// ---- the API, as the other clients call it ----

async function call(token, method, path, body, base = baseUrl) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
const service = (m, p, b) => call(tokens.service, m, p, b);
const worker = (m, p, b) => call(tokens.worker, m, p, b);
const unique = (p) => `${p}-${Math.random().toString(16).slice(2, 10)}`;

async function assign(token, executorId, type, extra = {}) {
  return (await call(token, "POST", "/api/collab/task.assign", { type, executorId, payload: { n: 1, nested: { deep: [1, 2] } }, ...extra })).jobId;
}
async function claim(executorId) {
  const { job } = await worker("POST", "/api/collab/task.claim", { executorId, workerId: "dash-worker" });
  if (!job) throw new Error(`nothing to claim for ${executorId}`);
  return job;
}
const progress = (job, pct, step, extra = {}) =>
  worker("POST", "/api/collab/task.progress", { jobId: job.id, leaseToken: job.leaseToken, progress: pct, step, ...extra });
const result = (job, ok, more = {}) =>
  worker("POST", "/api/collab/task.result", { jobId: job.id, type: job.type, ok, leaseToken: job.leaseToken, ...more });
async function events(jobId) {
  return (await service("GET", `/api/collab/events/by-job/${jobId}?limit=1000`)).items.map((e) => e.seq);
}

/// A dead letter of `type`: one attempt allowed, failed with `message`.
async function deadLetter(executorId, type, message) {
  const jobId = await assign(tokens.service, executorId, type, { maxAttempts: 1 });
  const job = await claim(executorId);
  await result(job, false, { error: { message } });
  return jobId;
}

/// A small valid PNG (an 8x8 square of one colour), built here.
function png() {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(8, 0);
  ihdr.writeUInt32BE(8, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const rows = Buffer.concat(Array.from({ length: 8 }, () => Buffer.from([0, ...Array(8).fill([31, 79, 163]).flat()])));
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(rows)), chunk("IEND", Buffer.alloc(0))]);
}

// ---- the browser ----

const browser = await chromium.launch({ executablePath: config.chromium, args: ["--no-sandbox"] });
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
const consoleErrors = [];
page.on("pageerror", (e) => consoleErrors.push(String(e)));

/// Polls `check` (in Node) until it answers something truthy, or fails
/// after `ms` naming `what`.
async function until(what, check, ms = 20_000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const shots = [];
async function shot(name) {
  await page.screenshot({ path: join(outDir, `${name}.png`), fullPage: true });
  shots.push(`${name}.png`);
}

/// axe-core on the page as it is: its serious and critical violations.
const violations = {};
async function axe(name) {
  await page.addScriptTag({ path: config.axe });
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.join(" ")).slice(0, 5) }));
  });
  violations[name] = found;
}

async function open(hash, token = tokens.service, base = baseUrl) {
  // A sign-in link: the token in the fragment, taken out at once.
  await page.goto(`${base}/#token=${encodeURIComponent(token)}`);
  await page.waitForSelector("header nav");
  if (hash) {
    await page.evaluate((h) => (location.hash = h), hash);
  }
  await page.waitForFunction(() => document.querySelector("main h1") && !document.querySelector(".loading"));
}

const text = (sel) => page.locator(sel).first().innerText();
const figure = async (name) => Number(await text(`[data-figure="${name}"] dd`));
async function chartColumn(title, series) {
  return page.evaluate(
    ([title, series]) =>
      [...document.querySelectorAll(`[data-chart="${title}"] td[data-series="${series}"]`)].map((td) => Number(td.textContent) || 0),
    [title, series],
  );
}
const sum = (xs) => xs.reduce((a, b) => a + b, 0);
async function timelineSeqs() {
  return page.evaluate(() => [...document.querySelectorAll(".timeline li[data-seq]")].map((li) => Number(li.dataset.seq)));
}
async function progressValue() {
  return page.evaluate(() => Number(document.querySelector('[data-field="progress"] [role="progressbar"]')?.getAttribute("aria-valuenow") ?? -1));
}

// ---- scenarios ----

const scenarios = {
  /// Counts and charts follow jobs assigned through the API, no reload.
  async overview() {
    await open("");
    await page.waitForSelector('[data-figure="queued"]');
    await page.waitForSelector('[data-chart="Jobs per minute"] td[data-series="enqueued"]', { state: "attached" });
    const before = { queued: await figure("queued"), enqueued: sum(await chartColumn("Jobs per minute", "enqueued")) };
    await axe("overview");
    const executor = unique("dash-overview");
    for (let i = 0; i < 3; i++) await assign(tokens.service, executor, "dash.overview");
    const url = page.url();
    await until("the counts and the chart to change", async () => {
      const q = await figure("queued");
      const e = sum(await chartColumn("Jobs per minute", "enqueued"));
      return q >= before.queued + 3 && e >= before.enqueued + 3;
    });
    const after = { queued: await figure("queued"), enqueued: sum(await chartColumn("Jobs per minute", "enqueued")) };
    const executorRow = await page.locator(`section:has(h2:text("Queue by executor")) tr:has(th:text-is("${executor}")) td`).first().innerText();
    await shot("overview");
    await page.setViewportSize({ width: 390, height: 844 });
    await shot("overview-390");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    return { before, after, executorRow: Number(executorRow), sameUrl: page.url() === url, overflow390: overflow };
  },

  /// A running job's page follows its progress, timeline and artifact.
  async job() {
    const executor = unique("dash-job");
    const jobId = await assign(tokens.service, executor, "dash.render");
    const job = await claim(executor);
    await open(`#/jobs/${jobId}`);
    await page.waitForSelector('[data-stream="live"]');
    const seen = [];
    for (const [pct, step] of [[10, "fetch"], [55, "render"], [90, "upload"]]) {
      await progress(job, pct, step);
      await until(`progress ${pct}`, async () => (await progressValue()) === pct);
      seen.push({ pct: await progressValue(), step: await text('[data-field="step"]') });
    }
    await shot("job-running");
    const upload = await worker("POST", "/functions/v1/artifact-upload-url", { jobId, leaseToken: job.leaseToken, name: "chart.png", mime: "image/png" });
    const bytes = png();
    const put = await fetch(upload.url, { method: "PUT", headers: upload.headers, body: bytes });
    if (put.status !== 201) throw new Error(`upload: ${put.status} ${await put.text()}`);
    // A file the worker says it stored elsewhere, at a URL that would run
    // script in the page: listed, never linked.
    const evil = { name: "elsewhere.txt", url: "javascript:document.title='pwned'", size: 1 };
    await result(job, true, { result: { pages: 3, summary: { ok: true } }, artifact: evil });
    await until("the job to succeed on the page", async () => (await text('[data-field="status"]')).includes("succeeded"));
    await page.waitForSelector('[data-artifact="chart.png"] a');
    await until("the preview to load", () => page.evaluate(() => document.querySelector("img.preview")?.naturalWidth ?? 0));
    const href = await page.locator('[data-artifact="chart.png"] a').getAttribute("href");
    const link = await fetch(new URL(href, baseUrl));
    const linked = Buffer.from(await link.arrayBuffer());
    await until("the stream to end", () => page.locator('[data-stream="ended"]').count());
    const timeline = await timelineSeqs();
    const api = await events(jobId);
    await axe("job");
    await shot("job");
    await page.waitForSelector('[data-artifact="elsewhere.txt"]');
    return {
      seen,
      scriptLinks: await page.locator('a[href^="javascript:"]').count(),
      timeline,
      api,
      linkStatus: link.status,
      linkSame: linked.equals(bytes),
      preview: await page.evaluate(() => document.querySelector("img.preview").naturalWidth),
    };
  },

  /// The job stream's connection is cut: the page says it is reconnecting,
  /// then catches up with no event missing or repeated.
  async reconnect() {
    const proxy = await cuttableProxy(new URL(baseUrl).port);
    const executor = unique("dash-reconnect");
    const jobId = await assign(tokens.service, executor, "dash.reconnect");
    const job = await claim(executor);
    await open(`#/jobs/${jobId}`, tokens.service, proxy.url);
    await page.waitForSelector('[data-stream="live"]');
    await progress(job, 5, "one");
    await until("the first progress", async () => (await progressValue()) === 5);
    proxy.cut(true);
    await page.waitForSelector('[data-stream="reconnecting"]', { timeout: 20_000 });
    await shot("job-reconnecting");
    // Events while the page is cut off: it must fetch them on reconnecting.
    for (const [pct, step] of [[20, "two"], [40, "three"], [60, "four"]]) await progress(job, pct, step);
    proxy.cut(false);
    await page.waitForSelector('[data-stream="live"]', { timeout: 30_000 });
    await until("the missed progress", async () => (await progressValue()) === 60);
    await progress(job, 80, "five");
    await result(job, true);
    await until("the stream to end", () => page.locator('[data-stream="ended"]').count());
    const timeline = await timelineSeqs();
    const api = await events(jobId);
    proxy.close();
    return { timeline, api, connections: proxy.connections() };
  },

  /// A dead letter retried from the page, then a filtered set after a dry run.
  async dlq() {
    const executor = unique("dash-dlq");
    const type = unique("dash.dead");
    const first = await deadLetter(executor, type, "boom one");
    await open(`#/dlq?type=${type}`);
    await page.waitForSelector(".letter");
    const letter = await page.locator(".letter").first().getAttribute("data-letter");
    await page.locator(".letter summary").first().click();
    const errorsShown = await page.locator(".letter details").first().innerText();
    await axe("dlq");
    await page.getByRole("button", { name: `Retry letter ${letter}` }).click();
    const single = await page.locator(`[data-letter="${letter}"] [data-retried]`).getAttribute("data-retried");
    const retriedJob = await service("GET", `/api/collab/job/${single}`);
    await deadLetter(executor, type, "boom two");
    await deadLetter(executor, type, "boom three");
    await page.getByRole("button", { name: "Show what would be retried" }).click();
    const dry = await page.waitForSelector("[data-dry-run]");
    const dryCount = Number(await dry.getAttribute("data-dry-run"));
    const dryText = await dry.innerText();
    const pending = (await service("GET", `/functions/v1/dlq-list?type=${type}`)).items.filter((d) => !d.retried_at).map((d) => d.id);
    await shot("dlq-dry-run");
    await page.getByRole("button", { name: `Retry these ${dryCount}` }).click();
    const done = await page.waitForSelector("[data-retried-count]");
    const doneCount = Number(await done.getAttribute("data-retried-count"));
    const letters = (await service("GET", `/functions/v1/dlq-list?type=${type}`)).items;
    await shot("dlq");
    return {
      type,
      first,
      letter: Number(letter),
      errorsShown,
      single: { jobId: single, status: retriedJob.status, type: retriedJob.type },
      dryCount,
      dryText,
      pendingBefore: pending,
      doneCount,
      lettersAfter: letters.map((d) => ({ id: d.id, retried: d.retried_job_id })),
    };
  },

  /// A user sees their own jobs only, and no metrics or dead letters.
  async user() {
    const executor = unique("dash-user");
    const type = unique("dash.mine");
    const mine = [await assign(tokens.user, executor, type), await assign(tokens.user, executor, type)];
    const theirs = await assign(tokens.otherUser, executor, type);
    await page.goto(baseUrl + "/");
    await page.getByLabel("Token or API key").fill(tokens.user);
    await axe("signin");
    await shot("signin");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForSelector("header nav");
    const nav = await page.locator("header nav a").allInnerTexts();
    const landing = await text("main h1");
    await page.evaluate((t) => (location.hash = `#/jobs?type=${t}`), type);
    // The filtered page once it holds at least the user's jobs of this type
    // (the unfiltered one shows them too), read in the same look: a poll
    // can redraw the list between two reads. Someone else's job of the
    // same type would be among the rows, and fail the comparison.
    const shown = await until("the user's jobs of this type", () =>
      page.evaluate(
        ([t, count]) => {
          const rows = [...document.querySelectorAll("tr[data-job]")];
          const done = rows.length >= count && rows.every((r) => r.querySelector("a").textContent === t);
          return done ? rows.map((r) => r.dataset.job) : null;
        },
        [type, mine.length],
      ),
    );
    await axe("jobs-user");
    await shot("jobs-user");
    await page.evaluate(() => (location.hash = "#/dlq"));
    await page.waitForFunction(() => document.querySelector("main h1")?.textContent === "Not available");
    const dlqPage = await text("main");
    await page.evaluate(() => (location.hash = "#/workers"));
    await page.waitForFunction(() => document.querySelector("main h1")?.textContent === "Not available");
    await page.evaluate((id) => (location.hash = `#/jobs/${id}`), theirs);
    const other = await (await page.waitForSelector('main [role="alert"]')).innerText();
    return { nav, landing, mine, theirs, shown, dlqPage, other };
  },

  /// Workers appear and leave live, and an agent's channel streams.
  async workers() {
    const executor = unique("dash-exec");
    const agent = unique("dash-agent");
    const beat = (workerId, extra = {}) =>
      worker("POST", "/api/collab/workers/heartbeat", { agentId: agent, workerId, executorId: executor, status: "idle", version: "1.2.3", running: 1, capacity: 4, ...extra });
    const first = unique("w");
    await beat(first);
    await open("#/workers");
    await page.waitForSelector(`tr[data-worker="${first}"]`);
    const second = unique("w");
    await beat(second, { status: "busy", running: 2 });
    await page.waitForSelector(`tr[data-worker="${second}"]`);
    const row = await page.locator(`tr[data-worker="${second}"]`).innerText();
    await page.locator(`tr[data-worker="${second}"] button`).click();
    await page.waitForSelector('[data-stream="live"] >> text=messages');
    await call(tokens.service, "POST", "/functions/v1/broadcast", { channel: `agents:${agent}`, type: "agent.note", payload: { text: "hello from the agent" } });
    await page.waitForSelector("text=hello from the agent");
    await axe("workers");
    await shot("workers");
    // Heartbeats stop: both leave once the active window passes.
    await until("the workers to leave", async () => (await page.locator(`tr[data-worker="${first}"], tr[data-worker="${second}"]`).count()) === 0, 30_000);
    const log = await page.locator('[data-log="presence"]').innerText();
    return { row, log, first, second };
  },

  /// Chat: the reply is drawn from the agent's streamed deltas.
  async chat() {
    await open("#/chat", tokens.user);
    await page.getByLabel("Message").fill("Say hello");
    await axe("chat");
    await page.getByRole("button", { name: "Send" }).click();
    const { job } = await worker("POST", "/api/collab/task.claim", { executorId: "chat", workerId: "dash-agent", waitSeconds: 10 });
    if (!job) throw new Error("no chat job was enqueued");
    await page.waitForSelector('[data-stream="live"]');
    for (const delta of ["Hel", "lo, ", "world"]) {
      await progress(job, undefined, undefined, { delta });
      await until(`delta ${delta}`, async () => (await text("[data-reply]")).trimEnd().endsWith(delta.trim()));
    }
    await result(job, true, { result: { message_id: "m-1", usage: { tokens: 3 } } });
    await until("the reply to be done", async () => (await text("[data-outcome]")).startsWith("done"));
    await shot("chat");
    return { reply: await text("[data-reply]"), outcome: await text("[data-outcome]"), content: job.payload };
  },

  /// Time to first render of the overview, each load in a fresh context
  /// (a cold cache): the page's own mark, set once its figures and charts
  /// are drawn, from navigation start. For scripts/bench --dashboard.
  async "first-render"() {
    const ms = [];
    // Where one load's time went: the page's requests, by name, in ms.
    const requests = [];
    for (let i = 0; i < (config.loads ?? 5); i++) {
      const fresh = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const p = await fresh.newPage();
      await p.goto(`${baseUrl}/#token=${encodeURIComponent(tokens.service)}`);
      await p.waitForFunction(() => performance.getEntriesByName("cogo:overview-rendered").length > 0, null, { timeout: 30_000 });
      ms.push(await p.evaluate(() => performance.getEntriesByName("cogo:overview-rendered")[0].startTime));
      requests.push(
        await p.evaluate(() =>
          performance.getEntriesByType("resource").map((r) => `${new URL(r.name).pathname.split("/").pop()} ${Math.round(r.startTime)}+${Math.round(r.duration)}`),
        ),
      );
      if (i === 0) await p.screenshot({ path: join(outDir, "overview-bench.png"), fullPage: true });
      await fresh.close();
    }
    return { ms, requests };
  },

  /// Every page once more at 390 px, signed in with an opaque service key
  /// (not a JWT): screenshots and axe; then a queued job cancelled from its
  /// page.
  async narrow() {
    await page.setViewportSize({ width: 390, height: 844 });
    const executor = unique("dash-narrow");
    const jobId = await assign(tokens.service, executor, "dash.narrow");
    const out = {};
    for (const [name, hash] of [["jobs", "#/jobs"], ["job", `#/jobs/${jobId}`], ["workers", "#/workers"], ["dlq", "#/dlq"], ["chat", "#/chat"]]) {
      await open(hash, config.key);
      await page.waitForLoadState("networkidle").catch(() => {});
      await axe(`${name}-390`);
      await shot(`${name}-390`);
      out[name] = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    }
    const who = await text(".who");
    await open(`#/jobs/${jobId}`, config.key);
    await page.getByRole("button", { name: "Cancel job" }).click();
    await until("the job to be cancelled on its page", async () => (await text('[data-field="status"]')).includes("cancelled"));
    const cancelled = (await service("GET", `/api/collab/job/${jobId}`)).status;
    return { overflow: out, who, cancelled, cancelButtons: await page.getByRole("button", { name: "Cancel job" }).count() };
  },
};

/// A TCP proxy in front of the stack whose connections the test can cut,
/// refusing new ones until it is let go.
function cuttableProxy(port) {
  const sockets = new Set();
  let refusing = false;
  let total = 0;
  const server = net.createServer((client) => {
    if (refusing) return client.destroy();
    total++;
    const upstream = net.connect(Number(port), "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        cut(on) {
          refusing = on;
          if (on) for (const s of sockets) s.destroy();
        },
        connections: () => total,
        close() {
          for (const s of sockets) s.destroy();
          server.close();
        },
      }),
    ),
  );
}

let report;
try {
  if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}; one of ${Object.keys(scenarios).join(", ")}`);
  const seen = await scenarios[scenario]();
  report = { scenario, ok: true, ...seen, violations, shots, pageErrors: consoleErrors };
} catch (e) {
  await shot(`${scenario}-failure`).catch(() => {});
  report = { scenario, ok: false, error: String(e?.stack ?? e), violations, shots, pageErrors: consoleErrors };
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
