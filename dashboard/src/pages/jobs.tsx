// Jobs, newest first, one page at a time (jobs-recent's cursor; never all
// of them): filters in the URL, each row's progress and step read again
// every 3 s. A user sees only their own jobs (row level security).
import { useState } from "preact/hooks";
import { api, query } from "../api";
import { href, Route } from "../route";
import { ErrorNote, Progress, Scroll, Status, pct, useCursorPages, usePoll, when } from "../ui";

const REFRESH_MS = 3000;
const PAGE = 20;
const STATUSES = ["queued", "running", "succeeded", "failed", "dead", "cancelled"];

function Filters({ route }: { route: Route }) {
  const p = route.params;
  const submit = (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    location.hash = href("jobs", undefined, {
      status: String(f.get("status") ?? ""),
      executorId: String(f.get("executorId") ?? "").trim(),
      type: String(f.get("type") ?? "").trim(),
    });
  };
  return (
    <form class="filters" onSubmit={submit} aria-label="Filter jobs">
      <label>
        Status
        <select name="status" value={p.get("status") ?? ""}>
          <option value="">any</option>
          {STATUSES.map((s) => (
            <option value={s}>{s}</option>
          ))}
        </select>
      </label>
      <label>
        Executor
        <input name="executorId" value={p.get("executorId") ?? ""} maxLength={200} />
      </label>
      <label>
        Type
        <input name="type" value={p.get("type") ?? ""} maxLength={200} />
      </label>
      <button type="submit">Filter</button>
    </form>
  );
}

export function Jobs({ route }: { route: Route }) {
  const filter = {
    status: route.params.get("status") ?? undefined,
    executorId: route.params.get("executorId") ?? undefined,
    type: route.params.get("type") ?? undefined,
  };
  const pages = useCursorPages();
  const cursor = pages.cursor;
  const key = route.params.toString();
  const [lastKey, setLastKey] = useState(key);
  if (key !== lastKey) {
    setLastKey(key);
    pages.reset();
  }
  const { data, error } = usePoll(
    (signal) => api("/functions/v1/jobs-recent" + query({ ...filter, limit: PAGE, cursor }), { signal }),
    REFRESH_MS,
    [key, cursor],
  );
  const items: any[] = data?.items ?? [];
  return (
    <>
      <h1 tabIndex={-1}>Jobs</h1>
      <Filters route={route} />
      <ErrorNote error={error} />
      <Scroll label="Jobs">
        <table class="jobs">
          <thead>
            <tr>
              <th scope="col">job</th>
              <th scope="col">status</th>
              <th scope="col">progress</th>
              <th scope="col">step</th>
              <th scope="col" class="wide">executor</th>
              <th scope="col" class="wide">created</th>
            </tr>
          </thead>
          <tbody>
            {items.map((j) => (
              <tr key={j.id} data-job={j.id}>
                <th scope="row">
                  <a href={href("jobs", j.id)}>{j.type}</a>
                  <div class="muted mono">{j.id.slice(0, 8)}</div>
                </th>
                <td>
                  <Status status={j.status} />
                </td>
                <td>
                  <Progress value={pct(j)} label={`progress of ${j.type} ${j.id.slice(0, 8)}`} />
                </td>
                <td>{j.current_step ?? "–"}</td>
                <td class="wide">{j.executor_id}</td>
                <td class="wide">{when(j.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Scroll>
      {data && items.length === 0 && <p>No jobs{cursor ? " on this page" : ""}.</p>}
      {pages.pager(data?.nextCursor)}
    </>
  );
}
