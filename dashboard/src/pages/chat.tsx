// A minimal chat console: each message is POSTed to chat with Accept:
// text/event-stream and the reply is drawn from its chat.delta frames as
// they arrive. A dropped stream is resumed by sending the same message
// (same idempotency key) with Last-Event-ID, as the protocol says.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "../api";
import { openStream, StreamState } from "../sse";
import { ErrorNote, StreamBadge } from "../ui";

interface Turn {
  key: string;
  text: string;
  reply: string;
  state: StreamState;
  outcome: string;
  error?: ApiError;
}

function newId(): string {
  return crypto.randomUUID();
}

export function Chat() {
  const [session] = useState(() => sessionStorage.getItem("cogo.chat") ?? newId());
  const [turns, setTurns] = useState<Turn[]>([]);
  const [draft, setDraft] = useState("");
  const streams = useRef<{ close(): void }[]>([]);
  useEffect(() => {
    sessionStorage.setItem("cogo.chat", session);
    return () => streams.current.forEach((s) => s.close());
  }, []);

  const update = (key: string, change: (t: Turn) => Partial<Turn>) =>
    setTurns((all) => all.map((t) => (t.key === key ? { ...t, ...change(t) } : t)));

  const send = (e: Event) => {
    e.preventDefault();
    const text = draft.trim();
    if (!text) return;
    const key = newId();
    setDraft("");
    setTurns((all) => [...all, { key, text, reply: "", state: "connecting", outcome: "waiting for an agent…" }]);
    streams.current.push(
      openStream("/functions/v1/chat", {
        method: "POST",
        body: { session_id: session, content: text, request_id: key, idempotency_key: key },
        isLast: (f) => f.event === "chat.done" || f.event === "error",
        onState: (state, error) => update(key, () => ({ state, ...(error ? { error, outcome: "failed" } : {}) })),
        onFrame: (f) => {
          if (f.event === "chat.delta") update(key, (t) => ({ reply: t.reply + (f.data?.delta ?? ""), outcome: "streaming…" }));
          else if (f.event === "chat.done") update(key, () => ({ outcome: `done in ${f.data?.total_ms ?? "?"} ms` }));
          else if (f.event === "error") update(key, () => ({ outcome: `error: ${f.data?.message ?? f.data?.code ?? "unknown"}` }));
        },
      }),
    );
  };

  return (
    <>
      <h1 tabIndex={-1}>Chat</h1>
      <p class="muted">
        Session <span class="mono">{session}</span>. Messages become <code>chat.message</code> jobs for the executor{" "}
        <code>chat</code>; an agent's progress deltas stream back here.
      </p>
      <ol class="chat" aria-live="polite">
        {turns.map((t) => (
          <li key={t.key} data-turn={t.key}>
            <p class="you">
              <strong>You:</strong> {t.text}
            </p>
            <p class="agent">
              <strong>Agent:</strong> <span data-reply>{t.reply}</span>
            </p>
            <p class="muted">
              <StreamBadge state={t.state} what="reply" /> <span data-outcome>{t.outcome}</span>
            </p>
            <ErrorNote error={t.error} />
          </li>
        ))}
      </ol>
      <form class="composer" onSubmit={send}>
        <label for="chat-message">Message</label>
        <textarea id="chat-message" rows={3} value={draft} onInput={(e) => setDraft((e.target as HTMLTextAreaElement).value)} maxLength={8000} />
        <button type="submit">Send</button>
      </form>
    </>
  );
}
