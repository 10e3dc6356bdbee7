//! Requests to PostgREST (hosted, or the local gateway) and the mapping of
//! its failures onto our error type: an upstream problem is a 502/503/504
//! with a retryable flag, never a bare 500.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::http::error::ApiError;
use crate::http::{ApiResponse, HttpRequest, Method, Transport, TransportError};

/// The schema every function of ours lives in.
pub const SCHEMA: &str = "cogo";

/// One SQL function in the `cogo` schema: the struct's fields are its
/// named arguments (each serialised as the SQL argument's name), so a
/// renamed argument is a compile error rather than a runtime 404.
pub trait SqlCall: Serialize {
    const FUNCTION: &'static str;
    /// The answer; `Value` where it is passed on as JSON.
    type Output: DeserializeOwned;
}

/// A struct that writes its fields as named SQL arguments into a JSON map
/// (so one can be flattened into another's arguments).
pub trait SqlArgs {
    fn write_args<M: serde::ser::SerializeMap>(&self, map: &mut M) -> Result<(), M::Error>;
}

/// Declares call structs: each field is written as the argument `p_<field>`
/// (`pub job_type as "type": String` writes `p_type`), and the struct
/// implements [`SqlCall`] when it names its function and answer:
///
/// ```ignore
/// sql_function! {
///     /// `cogo.cancel`: a job cancelled.
///     pub struct Cancel => "cancel" -> Value {
///         pub job_id: String,
///         @omit_none pub owner_id: Option<String>, // left out when None
///         @flatten pub paging: Paging,             // Paging's arguments inline
///     }
/// }
/// ```
macro_rules! sql_function {
    ($(
        $(#[$attr:meta])*
        pub struct $name:ident $(=> $function:literal -> $output:ty)? {
            $(
                $(#[$field_attr:meta])*
                $(@$mode:ident)?
                pub $field:ident $(as $arg:literal)? : $field_ty:ty
            ),* $(,)?
        }
    )*) => {$(
        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $($(#[$field_attr])* pub $field: $field_ty,)*
        }

        impl $crate::postgrest::SqlArgs for $name {
            fn write_args<M: ::serde::ser::SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
                $($crate::postgrest::sql_arg!(
                    map,
                    $crate::postgrest::sql_arg!(@key $field $($arg)?),
                    &self.$field,
                    $($mode)?
                );)*
                let _ = map;
                Ok(())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = ::serde::Serializer::serialize_map(serializer, None)?;
                $crate::postgrest::SqlArgs::write_args(self, &mut map)?;
                ::serde::ser::SerializeMap::end(map)
            }
        }

        $(impl $crate::postgrest::SqlCall for $name {
            const FUNCTION: &'static str = $function;
            type Output = $output;
        })?
    )*};
}
pub(crate) use sql_function;

/// One field of a [`sql_function!`] struct, written into the arguments map.
macro_rules! sql_arg {
    (@key $field:ident) => {
        concat!("p_", stringify!($field))
    };
    (@key $field:ident $arg:literal) => {
        concat!("p_", $arg)
    };
    ($map:ident, $key:expr, $value:expr,) => {
        ::serde::ser::SerializeMap::serialize_entry($map, $key, $value)?
    };
    ($map:ident, $key:expr, $value:expr, omit_none) => {
        if let Some(value) = $value {
            ::serde::ser::SerializeMap::serialize_entry($map, $key, value)?
        }
    };
    ($map:ident, $key:expr, $value:expr, flatten) => {
        $crate::postgrest::SqlArgs::write_args($value, $map)?
    };
}
pub(crate) use sql_arg;

/// Where PostgREST is and who calls it: the `apikey` the gateway checks,
/// and the bearer token PostgREST takes the database role from.
#[derive(Debug, Clone)]
pub struct Postgrest {
    base_url: String,
    api_key: String,
    bearer: String,
}

/// PostgREST's error body.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PgrstError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub details: Option<Value>,
    #[serde(default)]
    pub hint: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamError {
    /// No HTTP answer.
    Transport(TransportError),
    /// PostgREST answered with an error status.
    Status { status: u16, error: PgrstError },
    /// A 2xx whose body was not the JSON we asked for.
    BadBody(String),
}

impl Postgrest {
    /// The platform: the service key as both key and bearer.
    pub fn new(base_url: &str, api_key: &str) -> Postgrest {
        let base_url = base_url.trim_end_matches('/').to_string();
        Postgrest { base_url, api_key: api_key.to_string(), bearer: api_key.to_string() }
    }

    /// A user: their own JWT as the bearer, so row level security applies.
    pub fn as_user(base_url: &str, api_key: &str, jwt: &str) -> Postgrest {
        Postgrest { bearer: jwt.to_string(), ..Postgrest::new(base_url, api_key) }
    }

    /// The `postgrest` crate's client, used only to build requests: they
    /// go out through our transport, never through its reqwest client.
    fn client(&self) -> Result<postgrest::Postgrest, UpstreamError> {
        // The crate panics on a key no header can carry; that is an
        // answer here (as `fetch` refusing the header was before).
        let carried = |v: &str| v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f));
        if !carried(&self.api_key) || !carried(&self.bearer) {
            return Err(unbuildable("a key is not a valid header value".into()));
        }
        Ok(postgrest::Postgrest::new(self.base_url.as_str()).schema(SCHEMA).insert_header("apikey", &self.api_key))
    }

    /// `POST /rpc/<function>` with the call's named arguments.
    pub fn rpc<C: SqlCall>(&self, call: &C) -> Result<HttpRequest, UpstreamError> {
        self.rpc_json(C::FUNCTION, arguments(call)?)
    }

    fn rpc_json(&self, function: &str, arguments: String) -> Result<HttpRequest, UpstreamError> {
        into_request(self.client()?.rpc(function, arguments).auth(&self.bearer))
    }

    /// `GET /rpc/<function>` for a stable function without arguments (read
    /// only); the crate's `rpc` always posts, so this reads the function's
    /// path like a table.
    pub fn rpc_get(&self, function: &str) -> Result<HttpRequest, UpstreamError> {
        into_request(self.client()?.from(format!("rpc/{function}")).auth(&self.bearer))
    }

    /// Sends `request` and parses a successful answer as JSON (`null` for
    /// an empty body).
    pub async fn send<T: Transport>(&self, transport: &T, request: HttpRequest) -> Result<Value, UpstreamError> {
        let response = transport.send(request).await.map_err(UpstreamError::Transport)?;
        read_json(response)
    }

    /// Calls one SQL function and reads its answer as the call's output,
    /// straight from the bytes (no `Value` in between to build and walk
    /// again). Only the (de)serialisation is generic over the call: the
    /// round trip is one function, not one copy per call type in the wasm.
    pub async fn call<T: Transport, C: SqlCall>(&self, transport: &T, call: &C) -> Result<C::Output, UpstreamError> {
        let answer = self.call_bytes(transport, C::FUNCTION, arguments(call)?).await?;
        let answer = if answer.is_empty() { b"null".as_slice() } else { &answer };
        serde_json::from_slice(answer).map_err(|e| UpstreamError::BadBody(e.to_string()))
    }

    async fn call_bytes<T: Transport>(
        &self,
        transport: &T,
        function: &str,
        arguments: String,
    ) -> Result<Vec<u8>, UpstreamError> {
        let response = transport.send(self.rpc_json(function, arguments)?).await.map_err(UpstreamError::Transport)?;
        success_body(response)
    }
}

fn arguments<C: SqlCall>(call: &C) -> Result<String, UpstreamError> {
    serde_json::to_string(call).map_err(|e| UpstreamError::BadBody(e.to_string()))
}

/// The built request as our own value: method, URL, headers and body (none
/// for an empty one, since `fetch` refuses a body on a GET).
fn into_request(builder: postgrest::Builder) -> Result<HttpRequest, UpstreamError> {
    let request = builder.build().build().map_err(|e| unbuildable(e.to_string()))?;
    let method = Method::parse(request.method().as_str()).ok_or_else(|| unbuildable("unsupported method".into()))?;
    let headers = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let body = request.body().and_then(|b| b.as_bytes()).filter(|b| !b.is_empty()).map(<[u8]>::to_vec);
    Ok(HttpRequest { method, url: request.url().to_string(), headers, body })
}

/// A request that could not be built never reached PostgREST.
fn unbuildable(reason: String) -> UpstreamError {
    UpstreamError::Transport(TransportError::Unreachable(reason))
}

/// The body of a 2xx answer; any other status is PostgREST's error.
fn success_body(response: ApiResponse) -> Result<Vec<u8>, UpstreamError> {
    if !(200..300).contains(&response.status) {
        let error = serde_json::from_slice(&response.body).unwrap_or_default();
        return Err(UpstreamError::Status { status: response.status, error });
    }
    Ok(response.body)
}

fn read_json(response: ApiResponse) -> Result<Value, UpstreamError> {
    let body = success_body(response)?;
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&body).map_err(|e| UpstreamError::BadBody(e.to_string()))
}

impl UpstreamError {
    /// A short account of what went wrong, safe to show (no keys, no SQL).
    pub fn reason(&self) -> String {
        match self {
            UpstreamError::Transport(TransportError::Unreachable(_)) => "PostgREST did not answer".into(),
            UpstreamError::Transport(TransportError::TimedOut) => "PostgREST timed out".into(),
            UpstreamError::Status { status, error } => {
                format!(
                    "PostgREST answered {status}{}",
                    error.code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
                )
            }
            UpstreamError::BadBody(_) => "PostgREST answered with an unreadable body".into(),
        }
    }
}

impl From<UpstreamError> for ApiError {
    fn from(e: UpstreamError) -> ApiError {
        let reason = e.reason();
        match e {
            UpstreamError::Transport(TransportError::Unreachable(_)) => {
                ApiError::new(503, "upstream_unavailable", "the database gateway is unreachable").with_retryable(true)
            }
            UpstreamError::Transport(TransportError::TimedOut) => {
                ApiError::new(504, "upstream_timeout", "the database gateway did not answer in time")
                    .with_retryable(true)
            }
            UpstreamError::Status { status, error } => {
                let code = error.code.clone().unwrap_or_default();
                // 503 from PostgREST, or connection-class SQLSTATEs: the database is down or overloaded.
                let (our_status, api_code, retryable) =
                    if status == 503 || code.starts_with("08") || code.starts_with("53") {
                        (503, "db_unavailable", true)
                    } else if status == 504 {
                        (504, "upstream_timeout", true)
                    } else if status == 401 || status == 403 {
                        // Our own key was refused: a deployment error, not the caller's.
                        (502, "upstream_auth", false)
                    } else {
                        (502, "upstream_error", status >= 500)
                    };
                ApiError::new(our_status, api_code, reason)
                    .with_details(json!({ "upstreamStatus": status, "upstreamCode": error.code }))
                    .with_retryable(retryable)
            }
            UpstreamError::BadBody(_) => ApiError::new(502, "upstream_error", reason).with_retryable(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use std::cell::RefCell;

    struct Fake {
        answer: Result<ApiResponse, TransportError>,
        seen: RefCell<Vec<HttpRequest>>,
    }

    impl Transport for Fake {
        async fn send(&self, request: HttpRequest) -> Result<ApiResponse, TransportError> {
            self.seen.borrow_mut().push(request);
            self.answer.clone()
        }
    }

    fn answer(status: u16, body: &str) -> Fake {
        Fake {
            answer: Ok(ApiResponse { status, headers: vec![], body: body.as_bytes().to_vec() }),
            seen: RefCell::new(vec![]),
        }
    }

    sql_function! {
        pub struct Enqueue => "enqueue" -> Value {
            pub job_type as "type": &'static str,
        }
    }

    #[test]
    fn rpc_posts_named_args_to_the_schema() {
        let pg = Postgrest::new("http://pg/rest/v1/", "key");
        let req = pg.rpc(&Enqueue { job_type: "x" }).unwrap();
        assert_eq!(req.method, Method::Post);
        assert_eq!(req.url, "http://pg/rest/v1/rpc/enqueue");
        assert_eq!(req.header("content-profile"), Some("cogo"));
        assert_eq!(req.header("apikey"), Some("key"));
        assert_eq!(req.header("authorization"), Some("Bearer key"));
        assert_eq!(req.body.as_deref(), Some(br#"{"p_type":"x"}"#.as_slice()));
    }

    #[test]
    fn a_key_no_header_can_carry_is_an_error_not_a_panic() {
        let e = Postgrest::as_user("http://pg", "k", "jwt\nInjected: 1").rpc(&Enqueue { job_type: "x" }).unwrap_err();
        assert!(matches!(e, UpstreamError::Transport(TransportError::Unreachable(_))));
    }

    #[test]
    fn rpc_get_uses_accept_profile() {
        let req = Postgrest::new("http://pg", "k").rpc_get("health").unwrap();
        assert_eq!(req.method, Method::Get);
        assert_eq!(req.header("accept-profile"), Some("cogo"));
        assert_eq!(req.header("content-profile"), None);
    }

    #[test]
    fn success_parses_json_and_empty_is_null() {
        let pg = Postgrest::new("http://pg", "k");
        let fake = answer(200, "\"ok\"");
        assert_eq!(block_on(pg.send(&fake, pg.rpc_get("health").unwrap())), Ok(json!("ok")));
        let fake = answer(204, "");
        assert_eq!(block_on(pg.send(&fake, pg.rpc_get("health").unwrap())), Ok(Value::Null));
    }

    fn mapped(status: u16, body: &str) -> ApiError {
        let pg = Postgrest::new("http://pg", "k");
        block_on(pg.send(&answer(status, body), pg.rpc_get("f").unwrap())).unwrap_err().into()
    }

    #[test]
    fn failures_map_to_gateway_statuses() {
        let e = mapped(503, r#"{"code":"PGRST001","message":"Database client error"}"#);
        assert_eq!((e.status, e.code, e.retryable), (503, "db_unavailable", Some(true)));
        let e = mapped(500, r#"{"code":"08006","message":"connection failure"}"#);
        assert_eq!((e.status, e.code), (503, "db_unavailable"));
        let e = mapped(401, r#"{"code":"PGRST301","message":"JWSError"}"#);
        assert_eq!((e.status, e.code, e.retryable), (502, "upstream_auth", Some(false)));
        let e = mapped(404, r#"{"code":"PGRST202","message":"Could not find the function"}"#);
        assert_eq!((e.status, e.code, e.retryable), (502, "upstream_error", Some(false)));
        assert_eq!(e.details, Some(json!({"upstreamStatus": 404, "upstreamCode": "PGRST202"})));
        let e = mapped(502, "<html>bad gateway</html>");
        assert_eq!((e.status, e.retryable), (502, Some(true)));
    }

    #[test]
    fn transport_failures_are_retryable() {
        let pg = Postgrest::new("http://pg", "k");
        let fake = Fake { answer: Err(TransportError::TimedOut), seen: RefCell::new(vec![]) };
        let e: ApiError = block_on(pg.send(&fake, pg.rpc_get("f").unwrap())).unwrap_err().into();
        assert_eq!((e.status, e.code, e.retryable), (504, "upstream_timeout", Some(true)));
        let fake = Fake { answer: Err(TransportError::Unreachable("refused".into())), seen: RefCell::new(vec![]) };
        let e: ApiError = block_on(pg.send(&fake, pg.rpc_get("f").unwrap())).unwrap_err().into();
        assert_eq!((e.status, e.code), (503, "upstream_unavailable"));
        assert!(!e.message.contains("refused"), "transport detail stays out of the response");
    }

    #[test]
    fn error_never_echoes_the_key() {
        let e = mapped(401, r#"{"code":"PGRST301","message":"bad key: k"}"#);
        assert!(!e.body().to_string().contains("bad key"));
    }
}
