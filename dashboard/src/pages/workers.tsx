// Workers (platform only), live through workers-stream: each connection
// starts with `ready` and a `worker.joined` for every active worker, then
// joins, updates and leaves as they happen. A worker's agent channel can be
// followed beside it.
import { useEffect, useState } from "preact/hooks";
import { query } from "../api";
import { Frame, openStream, StreamState } from "../sse";
import { ErrorNote, Json, Scroll, StreamBadge, ago, useNow } from "../ui";

function AgentChannel({ agent }: { agent: string }) {
  const [messages, setMessages] = useState<Frame[]>([]);
  const [state, setState] = useState<StreamState>("connecting");
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setMessages([]);
    const s = openStream(`/functions/v1/channel${query({ name: `agents:${agent}` })}`, {
      onState: (st, e) => {
        setState(st);
        setError(e ?? null);
      },
      onFrame: (f) => {
        if (f.id !== null) setMessages((all) => [...all.slice(-99), f]);
      },
    });
    return () => s.close();
  }, [agent]);
  return (
    <section aria-labelledby="agent-channel">
      <h2 id="agent-channel">
        Channel agents:{agent} <StreamBadge state={state} what="messages" />
      </h2>
      <ErrorNote error={error} />
      {messages.length === 0 ? (
        <p class="muted">No messages yet.</p>
      ) : (
        <ol class="timeline">
          {messages.map((m) => (
            <li key={m.id} data-seq={m.id}>
              <strong>{m.event}</strong> <Json value={m.data?.payload} label="payload" />
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

export function Workers() {
  const [workers, setWorkers] = useState<Record<string, any>>({});
  const [log, setLog] = useState<string[]>([]);
  const [state, setState] = useState<StreamState>("connecting");
  const [error, setError] = useState<unknown>(null);
  const [agent, setAgent] = useState<string | null>(null);
  const now = useNow();
  useEffect(() => {
    const s = openStream("/functions/v1/workers-stream", {
      onState: (st, e) => {
        setState(st);
        setError(e ?? null);
      },
      onFrame: (f) => {
        const row = f.data?.payload;
        // Each connection starts with the whole roster: it replaces the last.
        if (f.event === "ready") {
          setWorkers({});
          return;
        }
        if (!row?.worker_id) return;
        const id: string = row.worker_id;
        if (f.event === "worker.left") {
          setWorkers((w) => {
            const { [id]: _gone, ...rest } = w;
            return rest;
          });
          setLog((l) => [`${id} left`, ...l].slice(0, 20));
        } else {
          setWorkers((w) => ({ ...w, [id]: row }));
          // A connection's roster comes as joins without an id: not news.
          if (f.event === "worker.joined" && f.id !== null) setLog((l) => [`${id} joined`, ...l].slice(0, 20));
        }
      },
    });
    return () => s.close();
  }, []);
  const rows = Object.values(workers).sort((a, b) => String(a.worker_id).localeCompare(String(b.worker_id)));
  return (
    <>
      <h1 tabIndex={-1}>Workers</h1>
      <p>
        <StreamBadge state={state} what="presence" />
      </p>
      <ErrorNote error={error} />
      <Scroll label="Active workers">
        <table>
          <thead>
            <tr>
              <th scope="col">worker</th>
              <th scope="col">executor</th>
              <th scope="col">status</th>
              <th scope="col">running / capacity</th>
              <th scope="col">version</th>
              <th scope="col">last heartbeat</th>
              <th scope="col">agent</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((w) => (
              <tr key={w.worker_id} data-worker={w.worker_id}>
                <th scope="row">{w.worker_id}</th>
                <td>{w.executor_id}</td>
                <td>{w.status}</td>
                <td>
                  {w.running ?? 0} / {w.capacity ?? "–"}
                </td>
                <td>{w.version ?? "–"}</td>
                <td>{ago(w.last_seen_at, now)}</td>
                <td>
                  {w.agent_id ? (
                    <button type="button" onClick={() => setAgent(w.agent_id)} aria-pressed={agent === w.agent_id}>
                      {w.agent_id}
                    </button>
                  ) : (
                    "–"
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Scroll>
      {rows.length === 0 && <p class="muted">No active workers.</p>}
      <h2>Joins and leaves</h2>
      <ul class="plain" aria-live="polite" data-log="presence">
        {log.map((l, i) => (
          <li key={`${i}-${l}`}>{l}</li>
        ))}
      </ul>
      {agent && <AgentChannel agent={agent} />}
    </>
  );
}
