// The public API, called with the signed-in credential as a bearer token:
// the dashboard has no other way in than any client.

const STORAGE_KEY = "cogo.credential";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/// Kept for the tab only (sessionStorage): closing it signs out.
export function credential(): string | null {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function storeCredential(value: string | null) {
  if (value === null) sessionStorage.removeItem(STORAGE_KEY);
  else sessionStorage.setItem(STORAGE_KEY, value);
}

export function authHeaders(extra: Record<string, string> = {}): Record<string, string> {
  const token = credential();
  return token ? { authorization: `Bearer ${token}`, ...extra } : extra;
}

/// The API's one error shape, {"error": {code, message}}, as an ApiError.
export async function errorOf(res: Response): Promise<ApiError> {
  let code = "http_" + res.status;
  let message = res.statusText || "request failed";
  try {
    const body = await res.json();
    code = body?.error?.code ?? code;
    message = body?.error?.message ?? message;
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(res.status, code, message);
}

export async function api<T = any>(path: string, init: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
  const headers = authHeaders(init.body === undefined ? {} : { "content-type": "application/json" });
  let res: Response;
  try {
    res = await fetch(path, {
      method: init.method ?? (init.body === undefined ? "GET" : "POST"),
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: init.signal,
    });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new ApiError(0, "network_error", "the server could not be reached");
  }
  if (!res.ok) throw await errorOf(res);
  return res.json();
}

/// A query string from the values that are set.
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? "?" + s : "";
}
