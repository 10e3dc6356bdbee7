//! Stream tickets: a browser's `EventSource` cannot send headers, so a
//! caller trades its credential for a short-lived ticket naming one stream
//! and one resource (a job, a channel), and passes it in the query string
//! (`?ticket=`). A ticket is never the long-lived credential: it carries
//! who the caller is, is signed with `ARTIFACT_SIGNING_SECRET`, ends after
//! [`TICKET_SECONDS`], and opens nothing but the stream it names.

use base64ct::{Base64UrlUnpadded, Encoding};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::auth::{Principal, Role, Via};
use crate::http::body::Body;
use crate::http::error::ApiError;
use crate::http::query::Query;
use crate::http::routes::Endpoint;
use crate::realtime::channels::Channel;

/// How long a ticket opens its stream. An `EventSource` reconnects with the
/// same URL, so this is also how long automatic reconnects work; after it,
/// the page asks for a new ticket.
pub const TICKET_SECONDS: i64 = 300;

/// Keeps a ticket's MAC apart from every other use of the secret (links).
const DOMAIN: &[u8] = b"cogo-stream-ticket\n";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Claims {
    /// The stream's endpoint id (`JobEventStream`).
    stream: String,
    /// The job id or channel name it is for; empty for a stream of no resource.
    resource: String,
    role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    executor: Option<String>,
    exp: i64,
}

/// The streams a ticket can open, by the name `stream-ticket` takes.
const STREAMS: &[(&str, Endpoint)] = &[
    ("job-events", Endpoint::JobEventStream),
    ("channel", Endpoint::ChannelStream),
    ("workers-stream", Endpoint::WorkersStream),
];

/// What a `stream-ticket` request asks for.
#[derive(Debug, PartialEq)]
pub struct TicketRequest {
    pub stream: Endpoint,
    /// The job id or channel name; empty for the workers' stream.
    pub resource: String,
    /// The stream's URL without the ticket.
    pub path: String,
}

/// `{stream: "job-events", jobId}`, `{stream: "channel", name}` or `{stream: "workers-stream"}`.
pub fn ticket_request(body: &Body) -> Result<TicketRequest, ApiError> {
    let name = body.req_str("stream", 32)?;
    let stream = STREAMS.iter().find(|(n, _)| *n == name).map(|(_, e)| *e).ok_or_else(|| {
        let names: Vec<&str> = STREAMS.iter().map(|(n, _)| *n).collect();
        ApiError::bad_request("invalid_field", format!("stream must be one of {}", names.join(", ")))
            .with_details(serde_json::json!({ "field": "stream" }))
    })?;
    let (resource, path) = match stream {
        Endpoint::JobEventStream => {
            let id = body.opt_uuid(&["jobId", "id"])?.ok_or_else(|| {
                ApiError::bad_request("missing_field", "jobId is required")
                    .with_details(serde_json::json!({ "field": "jobId" }))
            })?;
            (id.clone(), format!("/functions/v1/job-events?id={id}"))
        }
        Endpoint::ChannelStream => {
            let name = Channel::parse(&body.req_str("name", 200)?)?.name();
            let query = percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC);
            (name.clone(), format!("/functions/v1/channel?name={query}"))
        }
        _ => (String::new(), "/functions/v1/workers-stream".to_string()),
    };
    Ok(TicketRequest { stream, resource, path })
}

/// The resource a ticket must name to open `endpoint` with this query, or
/// `None` when tickets do not open that endpoint.
pub fn resource_of(endpoint: Endpoint, query: &Query) -> Option<String> {
    match endpoint {
        Endpoint::JobEventStream => Some(query.raw(&["id", "jobId"]).unwrap_or_default().to_string()),
        Endpoint::ChannelStream => Some(query.raw(&["name", "channel"]).unwrap_or_default().to_string()),
        Endpoint::WorkersStream => Some(String::new()),
        _ => None,
    }
}

fn mac(secret: &str, payload: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(DOMAIN);
    mac.update(payload.as_bytes());
    mac
}

/// A ticket for `principal` to open `stream` for `resource` until `now + TICKET_SECONDS`.
pub fn issue(secret: &str, principal: &Principal, stream: &str, resource: &str, now: i64) -> (String, i64) {
    let claims = Claims {
        stream: stream.to_string(),
        resource: resource.to_string(),
        role: principal.role.name().to_string(),
        sub: principal.sub.clone(),
        executor: principal.executor_id.clone(),
        exp: now + TICKET_SECONDS,
    };
    let payload = Base64UrlUnpadded::encode_string(&serde_json::to_vec(&claims).expect("claims serialise"));
    let sig = crate::hex(&mac(secret, &payload).finalize().into_bytes());
    (format!("{payload}.{sig}"), claims.exp)
}

fn invalid(why: &str) -> ApiError {
    ApiError::new(401, "invalid_ticket", why.to_string())
        .with_header("WWW-Authenticate", "Bearer error=\"invalid_token\"")
}

/// The caller a ticket stands for, if it is genuine, unexpired, and for
/// this `stream` and `resource`.
pub fn verify(secret: &str, ticket: &str, stream: &str, resource: &str, now: i64) -> Result<Principal, ApiError> {
    let (payload, sig) = ticket.split_once('.').ok_or_else(|| invalid("the ticket is malformed"))?;
    // Lower-case only, as issued: one spelling per ticket.
    let sig = super::hex_decode_32(sig, false).ok_or_else(|| invalid("the ticket is malformed"))?;
    mac(secret, payload).verify_slice(&sig).map_err(|_| invalid("the ticket's signature does not match"))?;
    let claims: Claims = Base64UrlUnpadded::decode_vec(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| invalid("the ticket is malformed"))?;
    if claims.exp <= now {
        return Err(invalid("the ticket has expired: ask stream-ticket for a new one"));
    }
    if claims.stream != stream || claims.resource != resource {
        return Err(ApiError::new(403, "ticket_not_for_this_stream", "the ticket opens another stream"));
    }
    let role = match claims.role.as_str() {
        "authenticated" => Role::Authenticated,
        "worker" => Role::Worker,
        "service_role" => Role::Service,
        _ => return Err(invalid("the ticket names no role that may stream")),
    };
    Ok(Principal { role, sub: claims.sub, executor_id: claims.executor, via: Via::Ticket })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn user() -> Principal {
        Principal { role: Role::Authenticated, sub: Some("u-1".into()), executor_id: None, via: Via::Jwt }
    }

    #[test]
    fn a_ticket_opens_its_stream_as_its_caller_until_it_ends() {
        let (ticket, exp) = issue("s", &user(), "JobEventStream", "job-1", NOW);
        assert_eq!(exp, NOW + TICKET_SECONDS);
        assert!(ticket.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "URL-safe: {ticket}");
        let p = verify("s", &ticket, "JobEventStream", "job-1", NOW + TICKET_SECONDS - 1).unwrap();
        assert_eq!((p.role, p.sub.as_deref(), p.via), (Role::Authenticated, Some("u-1"), Via::Ticket));
        assert_eq!(verify("s", &ticket, "JobEventStream", "job-1", NOW + TICKET_SECONDS).unwrap_err().status, 401);
    }

    #[test]
    fn requests_name_a_stream_and_its_resource() {
        let body = |s: &str| Body::parse(s.as_bytes(), 1000).unwrap();
        let job = "00000000-0000-4000-8000-000000000001";
        let r = ticket_request(&body(&format!(r#"{{"stream":"job-events","jobId":"{job}"}}"#))).unwrap();
        assert_eq!((r.stream, r.resource.as_str()), (Endpoint::JobEventStream, job));
        assert_eq!(r.path, format!("/functions/v1/job-events?id={job}"));
        let r = ticket_request(&body(r#"{"stream":"channel","name":"agents:a-1"}"#)).unwrap();
        assert_eq!((r.resource.as_str(), r.path.as_str()), ("agents:a-1", "/functions/v1/channel?name=agents%3Aa%2D1"));
        assert_eq!(ticket_request(&body(r#"{"stream":"workers-stream"}"#)).unwrap().resource, "");
        for (bad, field) in [(r#"{"stream":"jobs"}"#, "stream"), (r#"{"stream":"job-events"}"#, "jobId")] {
            let e = ticket_request(&body(bad)).unwrap_err();
            assert_eq!((e.status, e.details.unwrap()["field"].as_str()), (400, Some(field)), "{bad}");
        }
        let q = Query::parse(Some("id=j-1&ticket=t"));
        assert_eq!(resource_of(Endpoint::JobEventStream, &q).as_deref(), Some("j-1"));
        assert_eq!(resource_of(Endpoint::TaskClaim, &q), None, "tickets open streams only");
    }

    #[test]
    fn a_ticket_opens_nothing_else_and_cannot_be_forged() {
        let (ticket, _) = issue("s", &user(), "JobEventStream", "job-1", NOW);
        assert_eq!(
            verify("s", &ticket, "JobEventStream", "job-2", NOW).unwrap_err().code,
            "ticket_not_for_this_stream"
        );
        assert_eq!(verify("s", &ticket, "ChannelStream", "job-1", NOW).unwrap_err().status, 403);
        assert_eq!(verify("other", &ticket, "JobEventStream", "job-1", NOW).unwrap_err().code, "invalid_ticket");
        // Another payload under the same signature: a different job, or the service role.
        let (payload, sig) = ticket.split_once('.').unwrap();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&Base64UrlUnpadded::decode_vec(payload).unwrap()).unwrap();
        claims["role"] = "service_role".into();
        let forged = format!("{}.{sig}", Base64UrlUnpadded::encode_string(claims.to_string().as_bytes()));
        assert_eq!(verify("s", &forged, "JobEventStream", "job-1", NOW).unwrap_err().code, "invalid_ticket");
        for garbage in ["", "x", "a.b", &format!("{payload}.{}", "z".repeat(64))] {
            assert_eq!(verify("s", garbage, "JobEventStream", "job-1", NOW).unwrap_err().status, 401, "{garbage}");
        }
    }
}
