// One job: its facts, progress, payload and result, artifacts with signed
// links (images shown), cancel while it can be cancelled, and its event
// timeline, live through job-events from the last event already shown.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, query } from "../api";
import { Frame, openStream, StreamState } from "../sse";
import { ErrorNote, Json, Progress, Status, StreamBadge, pct, when } from "../ui";

interface JobEvent {
  seq: number;
  type: string;
  at: string;
  detail: string;
}

const FINISHED = ["succeeded", "failed", "dead", "cancelled"];

/// One line about an event, from its payload (summary) or frame (stream).
function detail(type: string, p: any): string {
  if (!p) return "";
  if (type === "progress") {
    const progress = p.progress ?? p;
    const parts = [];
    if (typeof progress.pct === "number") parts.push(`${progress.pct}%`);
    if (p.step) parts.push(String(p.step));
    if (progress.delta) parts.push(`“${progress.delta}”`);
    return parts.join(" · ");
  }
  if (type === "claimed") return `attempt ${p.attempt ?? "?"} by ${p.worker_id ?? "?"}`;
  if (p.error !== undefined && p.error !== null) return typeof p.error === "string" ? p.error : JSON.stringify(p.error);
  if (type === "created") return `${p.type ?? ""} for ${p.executor_id ?? ""}`;
  return p.status ? String(p.status) : "";
}

function fromSummary(e: any): JobEvent {
  return { seq: e.seq, type: e.event_type, at: e.created_at, detail: detail(e.event_type, e.payload) };
}

function fromFrame(f: Frame): JobEvent {
  return { seq: f.id!, type: f.event, at: f.data?.created_at, detail: detail(f.event, f.data) };
}

/// Only web links: a worker names the URL of a file it stored elsewhere,
/// and a `javascript:` one would run in this page, with its credential.
function webUrl(raw: unknown): string | null {
  try {
    const u = new URL(String(raw), location.href);
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
  } catch {
    return null;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function Artifact({ a }: { a: any }) {
  const [url, setUrl] = useState<string | null>(a.url ? webUrl(a.url) : null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (!a.bucket || !a.path) return;
    api("/functions/v1/sign-artifact" + query({ bucket: a.bucket, path: a.path, expires: 3600 }))
      .then((s) => setUrl(webUrl(s.url)))
      .catch(setError);
  }, [a.id, a.size, a.sha256]);
  const image = typeof a.mime === "string" && a.mime.startsWith("image/") && a.bucket;
  return (
    <li class="artifact" data-artifact={a.name}>
      {url ? (
        <a href={url} download={a.name} rel="noopener">
          {a.name}
        </a>
      ) : (
        <span>{a.name}</span>
      )}{" "}
      <span class="muted">
        {a.mime ?? ""} {typeof a.size === "number" ? `${a.size} bytes` : ""}
      </span>
      <ErrorNote error={error} />
      {image && url && <img class="preview" src={url} alt={`preview of ${a.name}`} />}
    </li>
  );
}

export function Job({ id }: { id: string }) {
  // The id goes into API paths: anything but a UUID is no job.
  if (!UUID.test(id)) {
    return (
      <>
        <h1 tabIndex={-1}>No such job</h1>
        <p>“{id}” is not a job id.</p>
      </>
    );
  }
  return <JobPage id={id} />;
}

function JobPage({ id }: { id: string }) {
  const [job, setJob] = useState<any>(null);
  const [artifacts, setArtifacts] = useState<any[]>([]);
  const [events, setEvents] = useState<JobEvent[]>([]);
  const [more, setMore] = useState(false);
  const [state, setState] = useState<StreamState>("connecting");
  const [error, setError] = useState<unknown>(null);
  const [cancel, setCancel] = useState<string | null>(null);
  const refresh = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  useEffect(() => {
    let stream: { close(): void } | null = null;
    let gone = false;
    // Job and artifacts again after events (an upload makes no event, but a
    // worker reports after it): at most every 300 ms.
    const reload = () => {
      clearTimeout(refresh.current);
      refresh.current = setTimeout(async () => {
        try {
          const [j, a] = await Promise.all([api(`/api/collab/job/${id}`), api(`/api/collab/artifacts/by-job/${id}`)]);
          if (gone) return;
          setJob(j);
          setArtifacts(a.items);
          setError(null);
        } catch (e) {
          if (!gone) setError(e);
        }
      }, 300);
    };
    setJob(null);
    setEvents([]);
    setError(null);
    api(`/api/collab/job/${id}/summary`)
      .then((s) => {
        if (gone) return;
        setJob(s.job);
        setArtifacts(s.artifacts);
        setMore(s.moreEvents);
        const shown: JobEvent[] = s.events.map(fromSummary);
        setEvents(shown);
        const last = shown.length ? shown[shown.length - 1].seq : null;
        stream = openStream(`/functions/v1/job-events${query({ id })}`, {
          lastEventId: last,
          onState: (st, e) => {
            setState(st);
            if (e) setError(e);
          },
          isLast: (f) => f.event === "done",
          onFrame: (f) => {
            if (f.id === null) return;
            const ev = fromFrame(f);
            setEvents((all) => (all.some((x) => x.seq === ev.seq) ? all : [...all, ev]));
            if (f.event === "progress") {
              setJob((j: any) => j && { ...j, progress: { ...(j.progress ?? {}), ...(typeof f.data?.pct === "number" ? { pct: f.data.pct } : {}) }, current_step: f.data?.step ?? j.current_step });
            }
            reload();
          },
        });
      })
      .catch((e) => {
        setError(e);
        setState("failed");
      });
    return () => {
      gone = true;
      clearTimeout(refresh.current);
      stream?.close();
    };
  }, [id]);

  const doCancel = async () => {
    try {
      const r = await api("/api/collab/task.cancel", { body: { jobId: id } });
      setCancel(r.cancelRequested ? "Cancel requested: the worker sees it at its next progress report." : `Job ${r.status}.`);
    } catch (e) {
      setCancel(null);
      setError(e);
    }
  };

  const cancellable = job && (job.status === "queued" || (job.status === "running" && !job.cancel_requested));
  return (
    <>
      <h1 tabIndex={-1}>Job {job ? job.type : ""}</h1>
      <p class="mono">{id}</p>
      <ErrorNote error={error} />
      {job && (
        <>
          <dl class="facts">
            <dt>status</dt>
            <dd data-field="status">
              <Status status={job.status} />
              {job.cancel_requested && !FINISHED.includes(job.status) && " (cancel requested)"}
            </dd>
            <dt>progress</dt>
            <dd data-field="progress">
              <Progress value={pct(job)} label="job progress" />
            </dd>
            <dt>current step</dt>
            <dd data-field="step">{job.current_step ?? "–"}</dd>
            <dt>executor</dt>
            <dd>{job.executor_id}</dd>
            <dt>attempts</dt>
            <dd>
              {job.attempts} of {job.max_attempts}
            </dd>
            <dt>created</dt>
            <dd>{when(job.created_at)}</dd>
            <dt>started</dt>
            <dd>{when(job.started_at)}</dd>
            <dt>finished</dt>
            <dd>{when(job.finished_at)}</dd>
          </dl>
          {cancellable && (
            <button type="button" class="danger" onClick={doCancel}>
              Cancel job
            </button>
          )}
          {cancel && <p role="status">{cancel}</p>}
          <section aria-labelledby="data">
            <h2 id="data">Payload and result</h2>
            <Json value={job.payload} label="payload" />
            <Json value={job.result} label="result" />
            {job.error !== null && job.error !== undefined && <Json value={job.error} label="error" />}
          </section>
          <section aria-labelledby="artifacts">
            <h2 id="artifacts">Artifacts</h2>
            {artifacts.length === 0 ? (
              <p class="muted">None yet.</p>
            ) : (
              <ul class="plain artifacts">
                {artifacts.map((a) => (
                  <Artifact key={a.id ?? a.url} a={a} />
                ))}
              </ul>
            )}
          </section>
        </>
      )}
      <section aria-labelledby="timeline">
        <h2 id="timeline">
          Timeline <StreamBadge state={state} what="events" />
        </h2>
        {more && <p class="muted">Earlier events are not shown: the latest 100 and every one after.</p>}
        <ol class="timeline">
          {events.map((e) => (
            <li key={e.seq} data-seq={e.seq} data-type={e.type}>
              <span class="seq">#{e.seq}</span> <strong>{e.type}</strong> <span class="muted">{when(e.at)}</span>{" "}
              <span>{e.detail}</span>
            </li>
          ))}
        </ol>
      </section>
    </>
  );
}
