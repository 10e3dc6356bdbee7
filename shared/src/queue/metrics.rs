//! The metrics overview in Prometheus' text exposition format (version
//! 0.0.4), for scrapers. The figures are the ones `metrics-overview`
//! answers in JSON, from the same SQL function.

use std::fmt::Write;

use serde_json::{Map, Value};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', r#"\""#).replace('\n', r"\n")
}

struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, help: &str) {
        let _ = write!(self.0, "# HELP {name} {help}\n# TYPE {name} gauge\n");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: &Value) {
        let Some(number) = value.as_f64() else { return };
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        let labels = if labels.is_empty() { String::new() } else { format!("{{{}}}", labels.join(",")) };
        let _ = writeln!(self.0, "{name}{labels} {number}");
    }

    /// `{key: {status: n}}` as one sample per (key, status).
    fn nested(&mut self, name: &str, help: &str, label: &str, map: Option<&Value>) {
        self.family(name, help);
        for (key, counts) in map.and_then(Value::as_object).into_iter().flatten() {
            for (status, n) in counts.as_object().into_iter().flatten() {
                self.sample(name, &[(label, key), ("status", status)], n);
            }
        }
    }

    fn flat(&mut self, name: &str, help: &str, label: &str, map: Option<&Value>) {
        self.family(name, help);
        for (key, n) in map.and_then(Value::as_object).into_iter().flatten() {
            self.sample(name, &[(label, key)], n);
        }
    }

    fn quantiles(&mut self, name: &str, help: &str, ms: Option<&Value>) {
        self.family(name, help);
        let empty = Map::new();
        let ms = ms.and_then(Value::as_object).unwrap_or(&empty);
        for (quantile, key) in [("0.5", "p50"), ("0.95", "p95")] {
            if let Some(v) = ms.get(key).and_then(Value::as_f64) {
                self.sample(name, &[("quantile", quantile)], &Value::from(v / 1000.0));
            }
        }
    }

    fn single(&mut self, name: &str, help: &str, value: Option<&Value>) {
        self.family(name, help);
        if let Some(v) = value {
            self.sample(name, &[], v);
        }
    }
}

/// Renders what `cogo.metrics_overview` answered.
pub fn render(overview: &Value) -> String {
    let mut out = Exposition(String::new());
    out.flat("cogo_jobs", "Jobs by status.", "status", overview.get("counts"));
    out.nested("cogo_jobs_by_type", "Jobs by type and status.", "type", overview.get("byType"));
    out.nested("cogo_jobs_by_executor", "Jobs by executor and status.", "executor", overview.get("byExecutor"));
    out.flat("cogo_jobs_finished", "Jobs finished within the trailing window.", "window", overview.get("finished"));
    let rates = overview.get("successRate");
    out.flat(
        "cogo_job_success_ratio_by_type",
        "Succeeded over finished (succeeded, failed, dead) jobs, by type.",
        "type",
        rates.and_then(|r| r.get("byType")),
    );
    out.flat(
        "cogo_job_success_ratio_by_executor",
        "Succeeded over finished (succeeded, failed, dead) jobs, by executor.",
        "executor",
        rates.and_then(|r| r.get("byExecutor")),
    );
    out.quantiles(
        "cogo_job_queue_wait_seconds",
        "Time from enqueue to first claim, over jobs finished in the last hour.",
        overview.get("queueWaitMs"),
    );
    out.quantiles(
        "cogo_job_run_seconds",
        "Time from first claim to finish, over jobs finished in the last hour.",
        overview.get("runTimeMs"),
    );
    out.single(
        "cogo_oldest_queued_job_age_seconds",
        "Age of the oldest queued job.",
        overview.get("oldestQueuedAgeSeconds"),
    );
    out.single("cogo_dead_letters", "Dead letters not yet retried.", overview.get("deadLetters"));
    out.single("cogo_active_workers", "Workers with a recent heartbeat.", overview.get("activeWorkers"));
    out.single("cogo_lost_leases", "Leases that expired before their job finished.", overview.get("lostLeases"));
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_every_family_with_escaped_labels() {
        let text = render(&json!({
            "counts": { "queued": 2, "running": 1 },
            "byType": { "say \"hi\"\n": { "queued": 2 } },
            "byExecutor": {},
            "finished": { "1m": 3 },
            "successRate": { "byType": { "t": 0.5 }, "byExecutor": {} },
            "queueWaitMs": { "p50": 1500.0, "p95": null },
            "runTimeMs": null,
            "oldestQueuedAgeSeconds": 12.5,
            "deadLetters": 4, "activeWorkers": 0, "lostLeases": 1
        }));
        assert!(text.contains("# TYPE cogo_jobs gauge\n"));
        assert!(text.contains("cogo_jobs{status=\"queued\"} 2\n"));
        assert!(text.contains(r#"cogo_jobs_by_type{type="say \"hi\"\n",status="queued"} 2"#), "{text}");
        assert!(text.contains("cogo_jobs_finished{window=\"1m\"} 3\n"));
        assert!(text.contains("cogo_job_success_ratio_by_type{type=\"t\"} 0.5\n"));
        assert!(text.contains("cogo_job_queue_wait_seconds{quantile=\"0.5\"} 1.5\n"));
        assert!(!text.contains("quantile=\"0.95\""));
        assert!(text.contains("cogo_oldest_queued_job_age_seconds 12.5\n"));
        assert!(text.contains("cogo_dead_letters 4\n"));
        // Every sample line is `name[{labels}] value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
