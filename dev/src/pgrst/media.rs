//! Content negotiation (v13's `MediaType.hs` and `negotiateContent`): the
//! `Accept` header picks how the body is aggregated and its Content-Type.

use super::error::PgrstError;
use super::sql::Handler;

#[derive(Debug, Clone, PartialEq)]
pub enum MediaType {
    Json,
    /// `application/vnd.pgrst.array+json;nulls=stripped`
    ArrayStripped,
    /// `application/vnd.pgrst.object+json`, optionally `;nulls=stripped`.
    Object {
        strip: bool,
    },
    Csv,
    GeoJson,
    Any,
    /// Anything this gateway does not produce, as the client wrote it.
    Other(String),
}

impl MediaType {
    pub fn mime(&self) -> String {
        match self {
            MediaType::Json => "application/json".into(),
            MediaType::ArrayStripped => "application/vnd.pgrst.array+json;nulls=stripped".into(),
            MediaType::Object { strip: false } => "application/vnd.pgrst.object+json".into(),
            MediaType::Object { strip: true } => "application/vnd.pgrst.object+json;nulls=stripped".into(),
            MediaType::Csv => "text/csv".into(),
            MediaType::GeoJson => "application/geo+json".into(),
            MediaType::Any => "*/*".into(),
            MediaType::Other(m) => m.clone(),
        }
    }

    pub fn content_type(&self) -> String {
        format!("{}; charset=utf-8", self.mime())
    }

    pub fn is_singular(&self) -> bool {
        matches!(self, MediaType::Object { .. })
    }
}

/// One media range: `type/subtype;param=value`.
pub fn decode(raw: &str) -> MediaType {
    let mut parts = raw.split(';').map(str::trim);
    let essence = parts.next().unwrap_or("").to_ascii_lowercase();
    let params: Vec<(String, String)> = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_string()))
        .collect();
    let stripped = params.iter().any(|(k, v)| k == "nulls" && v == "stripped");
    match essence.as_str() {
        "application/json" => MediaType::Json,
        "text/csv" => MediaType::Csv,
        "application/geo+json" => MediaType::GeoJson,
        "*/*" => MediaType::Any,
        "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => MediaType::Object { strip: stripped },
        "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array" if stripped => MediaType::ArrayStripped,
        "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array" => MediaType::Json,
        _ => MediaType::Other(raw.split(';').next().unwrap_or("").trim().to_string()),
    }
}

/// The `Accept` header's media types, highest quality first; none is `*/*`.
pub fn parse_accept(header: Option<&str>) -> Vec<MediaType> {
    let Some(header) = header.filter(|h| !h.trim().is_empty()) else { return vec![MediaType::Any] };
    let mut ranked: Vec<(f64, usize, &str)> = header
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, range)| {
            let q = range
                .split(';')
                .skip(1)
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f64>().ok())
                .unwrap_or(1.0);
            (q, i, range)
        })
        .filter(|(q, _, _)| *q > 0.0)
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    // The quality parameter is not part of the media type.
    ranked
        .into_iter()
        .map(|(_, _, r)| {
            let without_q: Vec<&str> = r.split(';').filter(|p| !p.trim().starts_with("q=")).collect();
            decode(&without_q.join(";"))
        })
        .collect()
}

/// The first accepted media type this gateway produces, with its handler.
pub fn negotiate(accepts: &[MediaType]) -> Result<(Handler, MediaType), PgrstError> {
    for mt in accepts {
        let handler = match mt {
            MediaType::Json | MediaType::Any => (Handler::Array { strip: false }, MediaType::Json),
            MediaType::ArrayStripped => (Handler::Array { strip: true }, mt.clone()),
            MediaType::Object { strip } => (Handler::Single { strip: *strip }, mt.clone()),
            MediaType::Csv => (Handler::Csv, MediaType::Csv),
            MediaType::GeoJson => (Handler::GeoJson, MediaType::GeoJson),
            MediaType::Other(_) => continue,
        };
        return Ok(handler);
    }
    let mimes: Vec<String> = accepts.iter().map(MediaType::mime).collect();
    Err(PgrstError::new(406, "PGRST107", format!("None of these media types are available: {}", mimes.join(", "))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers() {
        assert_eq!(parse_accept(None), vec![MediaType::Any]);
        assert_eq!(parse_accept(Some("text/csv")), vec![MediaType::Csv]);
        assert_eq!(
            parse_accept(Some("application/vnd.pgrst.object+json;nulls=stripped")),
            vec![MediaType::Object { strip: true }]
        );
        assert_eq!(
            parse_accept(Some("application/vnd.pgrst.array+json;nulls=stripped")),
            vec![MediaType::ArrayStripped]
        );
        assert_eq!(
            parse_accept(Some("text/plain;q=0.5, text/csv")),
            vec![MediaType::Csv, MediaType::Other("text/plain".into())]
        );
    }

    #[test]
    fn unsupported_media_is_pgrst107() {
        let e = negotiate(&parse_accept(Some("text/plain"))).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (406, "PGRST107"));
        assert_eq!(e.message, "None of these media types are available: text/plain");
        assert_eq!(negotiate(&parse_accept(Some("text/plain, */*"))).unwrap().1, MediaType::Json);
    }
}
