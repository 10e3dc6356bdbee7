// The dashboard: sign-in, the navigation a role may use, and the page the
// hash names. Every call goes to the public API with the signed-in
// credential; what the role may not call is not offered.
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import "./style.css";
import { credential } from "./api";
import { href, useRoute } from "./route";
import { Role, Session, signIn, signOut } from "./session";
import { ErrorNote } from "./ui";
import { Overview } from "./pages/overview";
import { Jobs } from "./pages/jobs";
import { Job } from "./pages/job";
import { Workers } from "./pages/workers";
import { DeadLetters } from "./pages/dlq";
import { Chat } from "./pages/chat";

const PAGES: { page: string; title: string; roles: Role[] }[] = [
  { page: "", title: "Overview", roles: ["service"] },
  { page: "jobs", title: "Jobs", roles: ["service", "user"] },
  { page: "workers", title: "Workers", roles: ["service"] },
  { page: "dlq", title: "Dead letters", roles: ["service"] },
  { page: "chat", title: "Chat", roles: ["service", "user"] },
];

function SignIn({ onSession, error: initial }: { onSession(s: Session): void; error?: unknown }) {
  const [error, setError] = useState<unknown>(initial);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const token = String(new FormData(e.target as HTMLFormElement).get("token") ?? "").trim();
    if (!token) return;
    setBusy(true);
    try {
      onSession(await signIn(token));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="signin">
      <h1>Sign in to cogo-edge</h1>
      <form onSubmit={submit}>
        <label for="token">Token or API key</label>
        <input id="token" name="token" type="password" autoComplete="off" spellcheck={false} required />
        <p class="muted" id="token-help">
          A user's JWT shows that user's jobs and chat; the service role key (or a service-role JWT) shows everything.
          It is kept in this tab only and sent to this server's API, nowhere else.
        </p>
        <button type="submit" disabled={busy}>
          {busy ? "Checking…" : "Sign in"}
        </button>
      </form>
      <ErrorNote error={error} />
    </main>
  );
}

function App() {
  const route = useRoute();
  const [session, setSession] = useState<Session | null>(null);
  const [checking, setChecking] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const main = useRef<HTMLElement>(null);

  // A sign-in link carries the token in the fragment (#token=...), which
  // never reaches a server; it is taken out of the address at once.
  useEffect(() => {
    const m = location.hash.match(/^#token=([^&]+)/);
    const token = m ? decodeURIComponent(m[1]) : credential();
    if (m) history.replaceState(null, "", location.pathname + location.search + "#/");
    if (!token) {
      setChecking(false);
      return;
    }
    signIn(token)
      .then(setSession)
      .catch(setError)
      .finally(() => setChecking(false));
  }, []);

  // Focus moves to the new page's heading, as a page load would.
  useEffect(() => {
    main.current?.querySelector<HTMLElement>("h1")?.focus();
  }, [route.page, route.id, session]);

  if (checking) return <p class="loading">Loading…</p>;
  if (!session) return <SignIn onSession={setSession} error={error} />;

  const allowed = PAGES.filter((p) => p.roles.includes(session.role));
  const home = allowed[0].page;
  const current = PAGES.find((p) => p.page === route.page);
  // An unknown page, or the overview for a role without metrics, is the
  // role's first page; a known page the role may not use says so.
  const page = !current || (route.page === "" && !current.roles.includes(session.role))
    ? home
    : current.roles.includes(session.role) ? route.page : null;
  let content;
  if (page === null) content = <NotForRole />;
  else if (page === "") content = <Overview />;
  else if (page === "jobs") content = route.id ? <Job id={route.id} /> : <Jobs route={route} />;
  else if (page === "workers") content = <Workers />;
  else if (page === "dlq") content = <DeadLetters route={route} />;
  else content = <Chat />;

  return (
    <>
      <a class="skip" href="#main" onClick={(e) => {
        e.preventDefault();
        main.current?.querySelector<HTMLElement>("h1")?.focus();
      }}>
        Skip to content
      </a>
      <header>
        <span class="brand">cogo-edge</span>
        <nav aria-label="Pages">
          <ul>
            {allowed.map((p) => (
              <li key={p.page}>
                <a href={href(p.page)} aria-current={page === p.page ? "page" : undefined}>
                  {p.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">{session.who}</span>
        <button
          type="button"
          onClick={() => {
            signOut();
            setSession(null);
            setError(null);
          }}
        >
          Sign out
        </button>
      </header>
      <main id="main" ref={main}>
        {content}
      </main>
    </>
  );
}

function NotForRole() {
  return (
    <>
      <h1 tabIndex={-1}>Not available</h1>
      <p>This page is for the platform (service role) only.</p>
    </>
  );
}

render(<App />, document.getElementById("app")!);
