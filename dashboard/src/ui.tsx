// Small pieces every page uses.
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api";
import type { StreamState } from "./sse";

export function Status({ status }: { status: string }) {
  return <span class={`status status-${status}`}>{status}</span>;
}

/// A job's progress: the reported percentage, full once it succeeded.
export function pct(job: { status?: string; progress?: any }): number | null {
  const p = job.progress?.pct ?? (typeof job.progress === "number" ? job.progress : null);
  if (job.status === "succeeded") return 100;
  return typeof p === "number" ? Math.max(0, Math.min(100, p)) : null;
}

export function Progress({ value, label }: { value: number | null; label: string }) {
  if (value === null) return <span class="muted">–</span>;
  return (
    <div class="bar" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={value}>
      <div class="bar-fill" style={{ width: `${value}%` }} />
      <span class="bar-text">{Math.round(value)}%</span>
    </div>
  );
}

/// A live stream's state, announced to screen readers when it changes.
export function StreamBadge({ state, what }: { state: StreamState; what: string }) {
  const text: Record<StreamState, string> = {
    connecting: "connecting…",
    live: "live",
    reconnecting: "reconnecting…",
    ended: "ended",
    failed: "not available",
  };
  return (
    <span class={`stream stream-${state}`} role="status" data-stream={state}>
      {what}: {text[state]}
    </span>
  );
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const message =
    error instanceof ApiError ? `${error.message} (${error.code})` : error instanceof Error ? error.message : String(error);
  return (
    <p class="error" role="alert">
      {message}
    </p>
  );
}

export function when(ts: string | null | undefined): string {
  if (!ts) return "–";
  const d = new Date(ts);
  return isNaN(d.getTime()) ? ts : d.toLocaleString(undefined, { hour12: false });
}

export function ago(ts: string | null | undefined, now: number): string {
  if (!ts) return "–";
  const s = Math.max(0, Math.round((now - new Date(ts).getTime()) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s ago` : `${Math.floor(s / 3600)}h ago`;
}

/// A wide table that scrolls sideways on a narrow screen; focusable, so a
/// keyboard can scroll it too.
export function Scroll({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <div class="scroll" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}

/// Collapsible JSON: objects and arrays fold, the first level open.
export function Json({ value, label, depth = 0 }: { value: unknown; label?: string; depth?: number }) {
  if (value === null || typeof value !== "object") {
    return (
      <span class={`json-${value === null ? "null" : typeof value}`}>
        {label !== undefined && <span class="json-key">{label}: </span>}
        {JSON.stringify(value)}
      </span>
    );
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
  const shape = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
  return (
    <details class="json" open={depth < 1}>
      <summary>
        {label !== undefined && <span class="json-key">{label}: </span>}
        <span class="muted">{shape}</span>
      </summary>
      <ul>
        {entries.map(([k, v]) => (
          <li key={k}>
            <Json value={v} label={k} depth={depth + 1} />
          </li>
        ))}
      </ul>
    </details>
  );
}

/// Calls `load` now and every `ms` while mounted, never two at once.
export function usePoll<T>(load: (signal: AbortSignal) => Promise<T>, ms: number, deps: unknown[]) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [at, setAt] = useState<number | null>(null);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    const ctl = new AbortController();
    let timer: ReturnType<typeof setTimeout>;
    const tick = async () => {
      try {
        const d = await loadRef.current(ctl.signal);
        if (ctl.signal.aborted) return;
        setData(d);
        setError(null);
        setAt(Date.now());
      } catch (e) {
        if (ctl.signal.aborted) return;
        setError(e);
      }
      timer = setTimeout(tick, ms);
    };
    setData(null);
    tick();
    return () => {
      ctl.abort();
      clearTimeout(timer);
    };
  }, deps);
  return { data, error, at };
}

/// The current time, every second: for "last seen 5s ago".
export function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  return now;
}

/// Cursor paging: the current page's cursor, the cursors of the pages
/// before it (to go back), and the Newer / Older buttons.
export function useCursorPages() {
  const [cursors, setCursors] = useState<(string | undefined)[]>([]);
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const reset = () => {
    setCursors([]);
    setCursor(undefined);
  };
  const pager = (nextCursor: string | null | undefined) => (
    <nav class="pager" aria-label="Pages">
      <button
        type="button"
        disabled={cursors.length === 0}
        onClick={() => {
          const back = [...cursors];
          setCursor(back.pop());
          setCursors(back);
        }}
      >
        Newer
      </button>
      <button
        type="button"
        disabled={!nextCursor}
        onClick={() => {
          setCursors([...cursors, cursor]);
          setCursor(nextCursor ?? undefined);
        }}
      >
        Older
      </button>
    </nav>
  );
  return { cursor, reset, pager };
}
