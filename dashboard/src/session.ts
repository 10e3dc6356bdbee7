// Who is signed in, found out by asking the API what the credential may
// do: a JWT or an opaque key alike, and no claim is trusted unverified.
import { api, ApiError, storeCredential } from "./api";

export type Role = "service" | "user";

export interface Session {
  role: Role;
  /// The user's id (a JWT's `sub`), for display.
  who: string;
}

/// A JWT's payload, unverified: only to name the user on screen.
function claims(token: string): Record<string, unknown> {
  const part = token.split(".")[1];
  if (!part) return {};
  try {
    return JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    return {};
  }
}

/// Stores the credential and finds its role: metrics are for the platform
/// (asked with the cheapest metrics read there is, a one-minute history),
/// jobs-recent for users too; anything else cannot use the dashboard.
export async function signIn(token: string): Promise<Session> {
  storeCredential(token);
  try {
    await api("/functions/v1/metrics-history?window=1m&step=1m");
    return { role: "service", who: "platform (service role)" };
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 403) {
      storeCredential(null);
      throw e;
    }
  }
  try {
    await api("/functions/v1/jobs-recent?limit=1");
  } catch (e) {
    storeCredential(null);
    if (e instanceof ApiError && e.status === 403) {
      throw new ApiError(403, "forbidden", "This credential is a worker's: sign in as a user or with the service role.");
    }
    throw e;
  }
  const sub = claims(token).sub;
  return { role: "user", who: typeof sub === "string" ? `user ${sub}` : "user" };
}

export function signOut() {
  storeCredential(null);
}
