//! Named channels as the platform names them: `jobs:{jobId}` (the job's
//! committed events), `agents:{agentId}` (presence, and what the agent
//! broadcasts: `agent.status`, `worker.metrics`, ...) and `system:events`
//! (announcements from the platform). Broadcasts are not transactional:
//! small JSON, delivered to whoever listens, the latest few kept for
//! reconnects.

use serde_json::{json, Value};

use crate::auth::{Principal, Role};
use crate::http::body::{field_too_large, invalid, parse_uuid, Body};
use crate::http::error::ApiError;
use crate::queue::tasks::MAX_NAME;

/// The largest broadcast payload, serialised.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;
/// The channel of worker joins, updates and leaves (workers-stream).
pub const WORKERS: &str = "workers";
pub const SYSTEM: &str = "system:events";

#[derive(Debug, PartialEq)]
pub enum Channel {
    Job(String),
    Agent(String),
    System,
}

impl Channel {
    pub fn parse(name: &str) -> Result<Channel, ApiError> {
        let bad = || {
            ApiError::bad_request(
                "invalid_channel",
                format!("channel must be jobs:<job id>, agents:<agent id> or {SYSTEM}; got {name:?}"),
            )
            .with_details(json!({ "field": "channel" }))
        };
        if name == SYSTEM {
            return Ok(Channel::System);
        }
        if let Some(job) = name.strip_prefix("jobs:") {
            return parse_uuid(job).map(Channel::Job).ok_or_else(bad);
        }
        match name.strip_prefix("agents:") {
            Some(agent)
                if !agent.is_empty() && agent.chars().count() <= MAX_NAME && !agent.chars().any(char::is_control) =>
            {
                Ok(Channel::Agent(agent.to_string()))
            }
            _ => Err(bad()),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Channel::Job(id) => format!("jobs:{id}"),
            Channel::Agent(id) => format!("agents:{id}"),
            Channel::System => SYSTEM.to_string(),
        }
    }
}

/// `POST broadcast {channel, type, payload}`: who may say what where. The
/// platform announces on `system:events`; an agent speaks on its own
/// `agents:` channel (the platform on any); a job's channel carries only
/// its committed events.
pub fn broadcast_request(body: &Body, principal: &Principal) -> Result<(Channel, String, Value), ApiError> {
    let channel = Channel::parse(&body.req_str("channel", MAX_NAME + 10)?)?;
    let kind = body.req_str("type", 100)?;
    if !kind.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b)) {
        return Err(invalid("type", "letters, digits and . _ - : only"));
    }
    let payload = body.opt_value(&["payload"]).unwrap_or_else(|| json!({}));
    let size = payload.to_string().len();
    if size > MAX_PAYLOAD_BYTES {
        return Err(field_too_large("payload", size, MAX_PAYLOAD_BYTES));
    }
    let forbidden = |why: &str| ApiError::new(403, "forbidden", why.to_string());
    match (&channel, principal.role) {
        (Channel::Job(_), _) => {
            return Err(ApiError::bad_request("invalid_channel", "a job's channel carries its committed events only"))
        }
        (_, Role::Service) => {}
        (Channel::Agent(agent), Role::Worker) if principal.sub.as_deref() == Some(agent.as_str()) => {}
        (Channel::Agent(_), _) => return Err(forbidden("only that agent (or the platform) broadcasts on its channel")),
        (Channel::System, _) => return Err(forbidden("only the platform announces on system:events")),
    }
    Ok((channel, kind, payload))
}

/// Who may listen where: a job's channel carries what job-events does, so
/// the same callers (its owner, whose reads row level security then checks,
/// and the platform); an agent's channel carries its presence and what it
/// says, for that agent and the platform; `system:events` for every member.
pub fn may_read(channel: &Channel, principal: &Principal) -> Result<(), ApiError> {
    let forbidden = |why: &str| Err(ApiError::new(403, "forbidden", why.to_string()));
    match (channel, principal.role) {
        (_, Role::Service) | (Channel::System, _) => Ok(()),
        (Channel::Job(_), Role::Authenticated) => Ok(()),
        (Channel::Job(_), _) => forbidden("a job's channel is for its owner and the platform"),
        (Channel::Agent(agent), Role::Worker) if principal.sub.as_deref() == Some(agent.as_str()) => Ok(()),
        (Channel::Agent(_), _) => forbidden("an agent's channel is for that agent and the platform"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Via;
    use crate::http::body::DEFAULT_MAX_BODY;

    fn body(s: &str) -> Body {
        Body::parse(s.as_bytes(), DEFAULT_MAX_BODY).unwrap()
    }

    fn principal(role: Role, sub: Option<&str>) -> Principal {
        Principal { role, sub: sub.map(str::to_string), executor_id: None, via: Via::Jwt }
    }

    #[test]
    fn channel_names() {
        assert_eq!(Channel::parse("system:events").unwrap(), Channel::System);
        assert_eq!(Channel::parse("agents:a-1").unwrap(), Channel::Agent("a-1".into()));
        let job = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(Channel::parse(&format!("jobs:{job}")).unwrap(), Channel::Job(job.into()));
        for bad in ["jobs:x", "agents:", "agents:a\nb", "system:other", "other"] {
            assert_eq!(Channel::parse(bad).unwrap_err().code, "invalid_channel", "{bad:?}");
        }
    }

    #[test]
    fn who_may_listen_where() {
        let job = Channel::Job("0f8fad5b-d9cb-469f-a165-70867728950e".into());
        let agent = Channel::Agent("a1".into());
        let user = principal(Role::Authenticated, Some("u"));
        let a1 = principal(Role::Worker, Some("a1"));
        let a2 = principal(Role::Worker, Some("a2"));
        let platform = principal(Role::Service, None);
        assert!(may_read(&job, &user).is_ok());
        assert_eq!(may_read(&job, &a1).unwrap_err().status, 403);
        assert!(may_read(&agent, &a1).is_ok());
        assert_eq!(may_read(&agent, &a2).unwrap_err().status, 403);
        assert_eq!(may_read(&agent, &user).unwrap_err().status, 403);
        assert!(may_read(&agent, &platform).is_ok() && may_read(&job, &platform).is_ok());
        assert!(may_read(&Channel::System, &user).is_ok() && may_read(&Channel::System, &a2).is_ok());
    }

    #[test]
    fn who_may_broadcast_where() {
        let agent = principal(Role::Worker, Some("a1"));
        let ok = broadcast_request(&body(r#"{"channel":"agents:a1","type":"agent.status","payload":{"s":1}}"#), &agent);
        assert_eq!(ok.unwrap().1, "agent.status");
        let other = body(r#"{"channel":"agents:a2","type":"agent.status"}"#);
        assert_eq!(broadcast_request(&other, &agent).unwrap_err().status, 403);
        assert!(broadcast_request(&other, &principal(Role::Service, None)).is_ok());
        let system = body(r#"{"channel":"system:events","type":"maintenance"}"#);
        assert_eq!(broadcast_request(&system, &agent).unwrap_err().status, 403);
        let job = body(r#"{"channel":"jobs:0f8fad5b-d9cb-469f-a165-70867728950e","type":"x"}"#);
        assert_eq!(broadcast_request(&job, &principal(Role::Service, None)).unwrap_err().status, 400);
        let big = format!(r#"{{"channel":"system:events","type":"x","payload":"{}"}}"#, "a".repeat(MAX_PAYLOAD_BYTES));
        assert_eq!(broadcast_request(&body(&big), &principal(Role::Service, None)).unwrap_err().status, 413);
        let bad_type = body(r#"{"channel":"system:events","type":"a b"}"#);
        assert_eq!(broadcast_request(&bad_type, &principal(Role::Service, None)).unwrap_err().status, 400);
    }
}
