// Dead letters (platform only): every attempt's error, retry one, or retry
// the letters a filter matches after a dry run has shown which they are.
import { useState } from "preact/hooks";
import { api, query } from "../api";
import { href, Route } from "../route";
import { ErrorNote, Json, useCursorPages, usePoll, when } from "../ui";

const PAGE = 20;

/// A datetime-local value (the browser's time zone) as RFC 3339.
function instant(local: string): string | undefined {
  if (!local) return undefined;
  const d = new Date(local);
  return isNaN(d.getTime()) ? undefined : d.toISOString();
}

/// RFC 3339 back to a datetime-local value, to show the filter in force.
function local(iso: string | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d.getTime())) return "";
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function Letter({ d, onRetried }: { d: any; onRetried(): void }) {
  const [retried, setRetried] = useState<string | null>(d.retried_job_id);
  const [error, setError] = useState<unknown>(null);
  const retry = async () => {
    try {
      const r = await api("/functions/v1/dlq-retry", { body: { dlqId: d.id } });
      setRetried(r.jobId);
      onRetried();
    } catch (e) {
      setError(e);
    }
  };
  const errors: any[] = Array.isArray(d.errors) ? d.errors : [];
  return (
    <li class="letter" data-letter={d.id}>
      <h3>
        Letter {d.id}: {d.type} <span class="muted">on {d.executor_id}</span>
      </h3>
      <p>
        {d.reason}, {d.attempts} attempt{d.attempts === 1 ? "" : "s"}, dead {when(d.created_at)} · dead job{" "}
        <a href={href("jobs", d.job_id)}>{d.job_id.slice(0, 8)}</a>
      </p>
      {errors.length > 0 && (
        <details>
          <summary>Errors of {errors.length} attempt{errors.length === 1 ? "" : "s"}</summary>
          <ol>
            {errors.map((e) => (
              <li>
                attempt {e.attempt} at {when(e.at)}: <Json value={e.error} />
              </li>
            ))}
          </ol>
        </details>
      )}
      <ErrorNote error={error} />
      {retried ? (
        <p data-retried={retried}>
          Retried as job <a href={href("jobs", retried)}>{retried.slice(0, 8)}</a>
        </p>
      ) : (
        <button type="button" onClick={retry}>
          Retry letter {d.id}
        </button>
      )}
    </li>
  );
}

export function DeadLetters({ route }: { route: Route }) {
  const p = route.params;
  const filter = {
    type: p.get("type") ?? undefined,
    executorId: p.get("executorId") ?? undefined,
    from: p.get("from") ?? undefined,
    to: p.get("to") ?? undefined,
  };
  const pages = useCursorPages();
  const cursor = pages.cursor;
  const [version, setVersion] = useState(0);
  const [preview, setPreview] = useState<any>(null);
  const [done, setDone] = useState<any>(null);
  const [error, setError] = useState<unknown>(null);
  const { data, error: listError } = usePoll(
    (signal) => api("/functions/v1/dlq-list" + query({ ...filter, limit: PAGE, cursor }), { signal }),
    10_000,
    [p.toString(), cursor, version],
  );
  const submit = (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    setPreview(null);
    setDone(null);
    pages.reset();
    location.hash = href("dlq", undefined, {
      type: String(f.get("type") ?? "").trim(),
      executorId: String(f.get("executorId") ?? "").trim(),
      from: instant(String(f.get("from") ?? "")),
      to: instant(String(f.get("to") ?? "")),
    });
  };
  const hasFilter = Object.values(filter).some(Boolean);
  const retryMatching = async (dryRun: boolean) => {
    setError(null);
    try {
      const r = await api("/functions/v1/dlq-retry", { body: { ...filter, max: 100, dryRun } });
      if (dryRun) {
        setPreview(r);
        setDone(null);
      } else {
        setDone(r);
        setPreview(null);
        setVersion((v) => v + 1);
      }
    } catch (e) {
      setError(e);
    }
  };
  const items: any[] = data?.items ?? [];
  return (
    <>
      <h1 tabIndex={-1}>Dead letters</h1>
      <form class="filters" onSubmit={submit} aria-label="Filter dead letters">
        <label>
          Type
          <input name="type" value={filter.type ?? ""} maxLength={200} />
        </label>
        <label>
          Executor
          <input name="executorId" value={filter.executorId ?? ""} maxLength={200} />
        </label>
        <label>
          Dead from
          <input name="from" type="datetime-local" value={local(filter.from)} />
        </label>
        <label>
          Dead until
          <input name="to" type="datetime-local" value={local(filter.to)} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <section aria-labelledby="bulk">
        <h2 id="bulk">Retry the matching letters</h2>
        {hasFilter ? (
          <>
            <p>Up to 100 of the oldest letters matching the filter and not yet retried. See which first.</p>
            <button type="button" onClick={() => retryMatching(true)}>
              Show what would be retried
            </button>
          </>
        ) : (
          <p class="muted">Filter first: retrying every letter at once is not offered.</p>
        )}
        <ErrorNote error={error} />
        {preview && (
          <div class="preview-box" role="status" data-dry-run={preview.count}>
            <p>
              {preview.count} letter{preview.count === 1 ? "" : "s"} would be retried
              {preview.count > 0 && ": " + preview.items.map((i: any) => i.dlqId).join(", ")}.
            </p>
            {preview.count > 0 && (
              <button type="button" class="danger" onClick={() => retryMatching(false)}>
                Retry these {preview.count}
              </button>
            )}
          </div>
        )}
        {done && (
          <div role="status" data-retried-count={done.count}>
            <p>Retried {done.count}:</p>
            <ul class="plain">
              {done.items.map((i: any) => (
                <li key={i.dlqId}>
                  letter {i.dlqId} as job {i.jobId ? <a href={href("jobs", i.jobId)}>{String(i.jobId).slice(0, 8)}</a> : "–"}
                </li>
              ))}
            </ul>
          </div>
        )}
      </section>
      <ErrorNote error={listError} />
      <ul class="plain letters">
        {items.map((d) => (
          <Letter key={d.id} d={d} onRetried={() => setVersion((v) => v + 1)} />
        ))}
      </ul>
      {data && items.length === 0 && <p>No dead letters.</p>}
      {pages.pager(data?.nextCursor)}
    </>
  );
}
