// Overview (platform only): metrics-overview's figures, the last hour per
// minute from metrics-history, and the queue by executor and by type.
// No stream carries every job's change, so both are read every 5 s.
import { useEffect } from "preact/hooks";
import { api } from "../api";
import { Chart } from "../chart";
import { href } from "../route";
import { ErrorNote, Scroll, Status, usePoll, when } from "../ui";

const REFRESH_MS = 5000;
/// Marked once the first figures and charts are drawn: the time to first
/// render that scripts/bench --dashboard reports.
const RENDERED = "cogo:overview-rendered";
const STATUSES = ["queued", "running", "succeeded", "failed", "dead", "cancelled"];

function Figure({ label, value, name }: { label: string; value: unknown; name: string }) {
  return (
    <div class="figure" data-figure={name}>
      <dt>{label}</dt>
      <dd>{value === null || value === undefined ? "–" : String(value)}</dd>
    </div>
  );
}

function QueueBy({ title, counts }: { title: string; counts: Record<string, Record<string, number>> }) {
  const rows = Object.entries(counts ?? {})
    .map(([key, c]) => ({ key, queued: c.queued ?? 0, running: c.running ?? 0 }))
    .filter((r) => r.queued + r.running > 0)
    .sort((a, b) => b.queued - a.queued || b.running - a.running || a.key.localeCompare(b.key))
    .slice(0, 20);
  return (
    <section aria-labelledby={`by-${title}`}>
      <h2 id={`by-${title}`}>Queue by {title}</h2>
      {rows.length === 0 ? (
        <p class="muted">Nothing queued or running.</p>
      ) : (
        <Scroll label={`Queue by ${title}`}>
          <table>
            <thead>
              <tr>
                <th scope="col">{title}</th>
                <th scope="col">queued</th>
                <th scope="col">running</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.key}>
                  <th scope="row">{r.key}</th>
                  <td>{r.queued}</td>
                  <td>{r.running}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Scroll>
      )}
    </section>
  );
}

export function Overview() {
  const { data, error, at } = usePoll(
    async (signal) => {
      const [overview, history] = await Promise.all([
        api("/functions/v1/metrics-overview", { signal }),
        api("/functions/v1/metrics-history?window=1h&step=1m", { signal }),
      ]);
      return { overview, history };
    },
    REFRESH_MS,
    [],
  );
  const o = data?.overview;
  // The charts' effects (children) have drawn by the time this one runs.
  useEffect(() => {
    if (o && performance.getEntriesByName(RENDERED).length === 0) performance.mark(RENDERED);
  }, [o]);
  const points: any[] = data?.history?.points ?? [];
  const times = points.map((p) => Date.parse(p.t) / 1000);
  const col = (k: string) => points.map((p) => p[k] as number | null);
  return (
    <>
      <h1 tabIndex={-1}>Overview</h1>
      <p class="muted" aria-live="off">
        {at ? `Updated ${new Date(at).toLocaleTimeString(undefined, { hour12: false })}, every 5 s.` : "Loading…"}
      </p>
      <ErrorNote error={error} />
      {o && (
        <>
          <section aria-labelledby="counts">
            <h2 id="counts">Jobs</h2>
            <dl class="figures">
              {STATUSES.map((s) => (
                <Figure label={s} name={s} value={o.counts?.[s] ?? 0} />
              ))}
              <Figure label="finished, last minute" name="finished1m" value={o.finished?.["1m"]} />
              <Figure label="finished, last hour" name="finished1h" value={o.finished?.["1h"]} />
              <Figure label="wait p50 / p95 (ms)" name="wait" value={o.queueWaitMs ? `${o.queueWaitMs.p50 ?? "–"} / ${o.queueWaitMs.p95 ?? "–"}` : null} />
              <Figure label="run p50 / p95 (ms)" name="run" value={o.runTimeMs ? `${o.runTimeMs.p50 ?? "–"} / ${o.runTimeMs.p95 ?? "–"}` : null} />
              <Figure label="oldest queued (s)" name="oldest" value={o.oldestQueuedAgeSeconds} />
              <Figure label="dead letters" name="deadLetters" value={o.deadLetters} />
              <Figure label="active workers" name="activeWorkers" value={o.activeWorkers} />
              <Figure label="lost leases" name="lostLeases" value={o.lostLeases} />
            </dl>
          </section>
          <section aria-labelledby="charts">
            <h2 id="charts">Last hour, per minute</h2>
            <div class="charts">
              <Chart
                title="Jobs per minute"
                times={times}
                series={[
                  { label: "enqueued", color: "#1f5fbf", values: col("enqueued") },
                  { label: "succeeded", color: "#1b7a3a", values: col("succeeded") },
                  { label: "failed attempts", color: "#b35c00", values: col("failed") },
                  { label: "dead", color: "#b3261e", values: col("dead") },
                ]}
              />
              <Chart title="Queue depth" times={times} series={[{ label: "queued", color: "#5b3cc4", values: col("queueDepth") }]} />
              <Chart title="Wait p95 (ms)" times={times} series={[{ label: "wait p95", color: "#8a5a00", values: col("waitP95Ms") }]} />
            </div>
          </section>
          <div class="two">
            <QueueBy title="executor" counts={o.byExecutor} />
            <QueueBy title="type" counts={o.byType} />
          </div>
          <section aria-labelledby="latest">
            <h2 id="latest">Latest jobs</h2>
            <ul class="plain">
              {(o.latest ?? []).map((j: any) => (
                <li key={j.id}>
                  <a href={href("jobs", j.id)}>{j.type}</a> <Status status={j.status} /> <span class="muted">{when(j.created_at)}</span>
                </li>
              ))}
            </ul>
          </section>
        </>
      )}
    </>
  );
}
