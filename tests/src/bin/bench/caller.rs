//! One worker's requests, through the edge or straight to the gateway's RPC.

use cogo_tests::Stack;
use serde_json::{json, Value};

#[derive(Clone, Copy, PartialEq)]
pub enum Path {
    /// workerd -> gateway -> PostgreSQL
    Edge,
    /// gateway -> PostgreSQL
    Direct,
}

/// A claimed job: its id and lease token.
pub type Lease = (Value, Value);

/// A client of its own (its own connections), as each worker loop has.
pub struct Caller {
    http: reqwest::Client,
    path: Path,
    edge: String,
    postgrest: String,
    key: String,
}

impl Caller {
    pub fn new(stack: &Stack, path: Path) -> Caller {
        Caller {
            http: reqwest::Client::new(),
            path,
            edge: stack.base_url.clone(),
            postgrest: stack.postgrest_url(),
            key: stack.service_key.clone(),
        }
    }

    /// `Err` for an answer that is not a success or a request that failed
    /// on the way (a reset connection): the run it belongs to fails, not the
    /// whole bench.
    async fn post(&self, edge_path: &str, rpc: &str, body: Value) -> Result<Value, String> {
        let req = match self.path {
            Path::Edge => self
                .http
                .post(format!("{}{edge_path}", self.edge))
                .header("authorization", format!("Bearer {}", self.key)),
            Path::Direct => self
                .http
                .post(format!("{}/rpc/{rpc}", self.postgrest))
                .header("apikey", &self.key)
                .header("authorization", format!("Bearer {}", self.key))
                .header("content-profile", "cogo"),
        };
        let failed = |e: reqwest::Error| format!("{edge_path}{rpc}: {e}");
        let resp = req.json(&body).send().await.map_err(failed)?;
        let status = resp.status();
        let text = resp.text().await.map_err(failed)?;
        if !status.is_success() {
            return Err(format!("{edge_path}{rpc}: {status} {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{edge_path}{rpc}: {e} in {text}"))
    }

    /// POSTs `body` to an edge endpoint, as the service role.
    pub async fn edge(&self, path: &str, body: Value) -> Result<Value, String> {
        assert!(self.path == Path::Edge, "{path} is an edge endpoint");
        self.post(path, "", body).await
    }

    /// Claims up to `limit`.
    pub async fn claim(&self, executor: &str, worker: &str, limit: i64) -> Result<Vec<Lease>, String> {
        let body = match self.path {
            Path::Edge => json!({"executorId": executor, "workerId": worker, "limit": limit}),
            Path::Direct => {
                json!({"p_executor_id": executor, "p_worker_id": worker, "p_lease_seconds": 60, "p_limit": limit})
            }
        };
        let reply = self.post("/api/collab/task.claim", "claim", body).await?;
        let jobs = match self.path {
            Path::Edge => reply["jobs"].clone(),
            Path::Direct => reply,
        };
        let token = if self.path == Path::Edge { "leaseToken" } else { "lease_token" };
        let jobs = jobs.as_array().ok_or_else(|| format!("task.claim answered {jobs}, not a list"))?;
        Ok(jobs.iter().map(|j| (j["id"].clone(), j[token].clone())).collect())
    }

    pub async fn complete(&self, jobs: &[Lease]) -> Result<(), String> {
        match (self.path, jobs) {
            (Path::Edge, [(id, token)]) => {
                let body = json!({"jobId": id, "type": "bench.job", "ok": true, "leaseToken": token});
                self.post("/api/collab/task.result", "", body).await?;
            }
            (Path::Edge, _) => {
                let results: Vec<Value> = jobs
                    .iter()
                    .map(|(id, token)| json!({"jobId": id, "type": "bench.job", "ok": true, "leaseToken": token}))
                    .collect();
                self.post("/api/collab/task.result", "", json!({"results": results})).await?;
            }
            (Path::Direct, [(id, token)]) => {
                let body = json!({"p_job_id": id, "p_ok": true, "p_lease_token": token});
                self.post("", "complete", body).await?;
            }
            (Path::Direct, _) => {
                let results: Vec<Value> = jobs
                    .iter()
                    .map(|(id, token)| json!({"p_job_id": id, "p_ok": true, "p_lease_token": token}))
                    .collect();
                self.post("", "complete_many", json!({"p_results": results})).await?;
            }
        }
        Ok(())
    }

    /// Completes `job` and claims the next one in the same request
    /// (`task.result` with `next`); `Err` when the server answers without
    /// `job`, as one that does not know `next` does.
    /// task.result for `jobs` with `next`, claiming `limit` more in the
    /// same request (the single form for one job and limit 1).
    pub async fn complete_next(&self, jobs: &[Lease], limit: i64) -> Result<Vec<Lease>, String> {
        let result = |(id, token): &Lease| json!({"jobId": id, "type": "bench.job", "ok": true, "leaseToken": token});
        let body = match jobs {
            [one] if limit == 1 => {
                let mut body = result(one);
                body["next"] = json!({});
                body
            }
            _ => json!({"results": jobs.iter().map(result).collect::<Vec<_>>(), "next": {"limit": limit}}),
        };
        let reply = self.edge("/api/collab/task.result", body).await?;
        match (reply.get("job"), reply.get("jobs").and_then(Value::as_array)) {
            (Some(Value::Null), _) => Ok(Vec::new()),
            (Some(job), _) => Ok(vec![(job["id"].clone(), job["leaseToken"].clone())]),
            (None, Some(jobs)) => Ok(jobs.iter().map(|j| (j["id"].clone(), j["leaseToken"].clone())).collect()),
            (None, None) => Err(format!("`next` not implemented: task.result answered {reply}, no `job`")),
        }
    }
}
