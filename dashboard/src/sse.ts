// Server-Sent Events over fetch: EventSource cannot send the Authorization
// header, and a chat stream is the answer to a POST. Frames are parsed as
// the API writes them (`id: `, `event: `, `data: ` with one-line JSON, a
// blank line after each). A dropped connection is opened again with
// Last-Event-ID, so the server replays exactly what was missed; a frame
// whose id was already seen is dropped, so nothing is shown twice.
import { authHeaders, errorOf, ApiError } from "./api";

export type StreamState = "connecting" | "live" | "reconnecting" | "ended" | "failed";

export interface Frame {
  id: number | null;
  event: string;
  data: any;
}

export interface StreamOptions {
  method?: "GET" | "POST";
  body?: unknown;
  lastEventId?: number | null;
  onFrame(frame: Frame): void;
  onState(state: StreamState, error?: ApiError): void;
  /// The frame after which the server ends the stream for good.
  isLast?(frame: Frame): boolean;
}

/// The API sends keepalives every 15 s; this much silence means the
/// connection is gone even if the socket has not said so.
const SILENCE_MS = 45_000;
const MAX_BACKOFF_MS = 10_000;

function parseFrame(raw: string): Frame | null {
  const frame: Frame = { id: null, event: "message", data: null };
  let seen = false;
  for (const line of raw.split("\n")) {
    const l = line.endsWith("\r") ? line.slice(0, -1) : line;
    if (l.startsWith("id: ")) frame.id = Number(l.slice(4));
    else if (l.startsWith("event: ")) frame.event = l.slice(7);
    else if (l.startsWith("data: ")) {
      try {
        frame.data = JSON.parse(l.slice(6));
      } catch {
        frame.data = l.slice(6);
      }
    } else continue;
    seen = true;
  }
  return seen ? frame : null;
}

export function openStream(path: string, opts: StreamOptions): { close(): void } {
  let closed = false;
  let last = opts.lastEventId ?? null;
  let current: AbortController | null = null;

  const run = async () => {
    for (let attempt = 0; !closed; attempt++) {
      opts.onState(attempt === 0 ? "connecting" : "reconnecting");
      if (attempt > 0) {
        // Backoff between attempts, so a server that is down is not hammered.
        await new Promise((r) => setTimeout(r, Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(attempt - 1, 5))));
        if (closed) return;
      }
      const ctl = new AbortController();
      current = ctl;
      let silence: ReturnType<typeof setTimeout> | undefined;
      const quiet = () => {
        clearTimeout(silence);
        silence = setTimeout(() => ctl.abort(), SILENCE_MS);
      };
      try {
        const headers = authHeaders({ accept: "text/event-stream" });
        if (last !== null) headers["last-event-id"] = String(last);
        if (opts.body !== undefined) headers["content-type"] = "application/json";
        const res = await fetch(path, {
          method: opts.method ?? "GET",
          headers,
          body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
          signal: ctl.signal,
        });
        if (!res.ok || !res.body) {
          const error = await errorOf(res);
          // Refusals do not get better by asking again; outages may.
          if (res.status < 500 && res.status !== 429) {
            opts.onState("failed", error);
            return;
          }
          throw error;
        }
        opts.onState("live");
        attempt = 0;
        quiet();
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          quiet();
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const frame = parseFrame(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            if (!frame) continue;
            if (frame.id !== null) {
              if (last !== null && frame.id <= last) continue;
              last = frame.id;
            }
            opts.onFrame(frame);
            if (opts.isLast?.(frame)) {
              closed = true;
              ctl.abort();
              opts.onState("ended");
              return;
            }
          }
        }
      } catch {
        // A drop, an abort for silence or a 5xx: go round again.
      } finally {
        clearTimeout(silence);
      }
    }
  };
  run();
  return {
    close() {
      closed = true;
      current?.abort();
    },
  };
}
