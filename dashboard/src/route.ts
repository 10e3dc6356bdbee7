// Hash routes (#/jobs/<id>, #/jobs?status=running): every path outside the
// hash belongs to the API, so the dashboard never shadows an endpoint.
import { useEffect, useState } from "preact/hooks";

export interface Route {
  page: string;
  id?: string;
  params: URLSearchParams;
}

function parseRoute(hash: string): Route {
  const [path, q] = hash.replace(/^#\/?/, "").split("?", 2);
  const [page, id] = path.split("/", 2);
  return { page: page || "", id: id ? decodeURIComponent(id) : undefined, params: new URLSearchParams(q ?? "") };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}

export function href(page: string, id?: string, params?: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) if (v) q.set(k, v);
  const s = q.toString();
  return `#/${page}${id ? "/" + encodeURIComponent(id) : ""}${s ? "?" + s : ""}`;
}
