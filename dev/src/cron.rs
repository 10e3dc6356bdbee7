//! The cron triggers of wrangler.toml, fired locally. `wrangler dev` does not
//! run scheduled handlers by itself; with `--test-scheduled` it runs one for
//! each `GET /__scheduled?cron=<expression>`, which this ticker sends on the
//! schedule (UTC, as Cloudflare runs them) or, for tests, every few seconds.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;

/// The cron expressions of a wrangler.toml's `[triggers] crons`.
pub fn crons_of_wrangler_toml(text: &str) -> Result<Vec<String>, String> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| format!("wrangler.toml: {e}"))?;
    let Some(crons) = doc.get("triggers").and_then(|t| t.get("crons")) else { return Ok(Vec::new()) };
    crons
        .as_array()
        .ok_or("wrangler.toml: [triggers] crons must be an array")?
        .iter()
        .map(|c| c.as_str().map(str::to_string).ok_or_else(|| "wrangler.toml: a cron must be a string".to_string()))
        .collect()
}

/// When each trigger fires.
#[derive(Debug)]
pub struct Schedule {
    crons: Vec<(String, Cron)>,
    /// Fires every trigger at this period instead of its expression.
    every: Option<Duration>,
}

impl Schedule {
    pub fn new(expressions: &[String], every: Option<Duration>) -> Result<Schedule, String> {
        let crons = expressions
            .iter()
            .map(|e| Cron::from_str(e).map(|c| (e.clone(), c)).map_err(|why| format!("cron {e:?}: {why}")))
            .collect::<Result<_, _>>()?;
        Ok(Schedule { crons, every })
    }

    pub fn is_empty(&self) -> bool {
        self.crons.is_empty()
    }

    /// A line for the console: what fires, and when.
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self.crons.iter().map(|(e, _)| e.as_str()).collect();
        match self.every {
            Some(every) => format!("{} every {}s (--cron-every)", names.join(", "), every.as_secs_f64()),
            None => format!("{} (UTC, as on the edge)", names.join(", ")),
        }
    }

    /// The next time after `now` that any trigger fires, with the
    /// expressions due then.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, Vec<String>)> {
        if let Some(every) = self.every {
            let at = now + chrono::Duration::from_std(every).ok()?;
            return Some((at, self.crons.iter().map(|(e, _)| e.clone()).collect()));
        }
        let upcoming: Vec<(DateTime<Utc>, &String)> =
            self.crons.iter().filter_map(|(e, c)| Some((c.find_next_occurrence(&now, false).ok()?, e))).collect();
        let at = upcoming.iter().map(|(t, _)| *t).min()?;
        Some((at, upcoming.into_iter().filter(|(t, _)| *t == at).map(|(_, e)| e.clone()).collect()))
    }
}

/// Fires the schedule at the worker on 127.0.0.1:`port` until dropped,
/// printing only what goes wrong (the handler logs its own work).
pub async fn tick(port: u16, schedule: Schedule) {
    let http = reqwest::Client::new();
    while let Some((at, due)) = schedule.next_after(Utc::now()) {
        let wait = (at - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        for cron in due {
            let url = format!("http://127.0.0.1:{port}/__scheduled?cron={}", cron.replace(' ', "+"));
            match http.get(&url).send().await {
                Ok(reply) if reply.status().is_success() => {}
                Ok(reply) => eprintln!("cron {cron}: the scheduled handler answered {}", reply.status()),
                Err(e) => eprintln!("cron {cron}: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn reads_the_triggers_of_wrangler_toml() {
        let text = "name = \"x\"\n[triggers]\ncrons = [\"* * * * *\", \"*/5 * * * *\"]\n";
        assert_eq!(crons_of_wrangler_toml(text).unwrap(), vec!["* * * * *", "*/5 * * * *"]);
        assert_eq!(crons_of_wrangler_toml("name = \"x\"\n").unwrap(), Vec::<String>::new());
        assert!(crons_of_wrangler_toml("[triggers]\ncrons = \"* * * * *\"\n").is_err());
        let ours = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../wrangler.toml")).unwrap();
        assert_eq!(crons_of_wrangler_toml(&ours).unwrap(), vec!["* * * * *"]);
    }

    #[test]
    fn the_next_firing_follows_the_expressions() {
        let schedule = Schedule::new(&["* * * * *".into(), "*/5 * * * *".into()], None).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 10, 3, 20).unwrap();
        let (at, due) = schedule.next_after(now).unwrap();
        assert_eq!((at, due), (Utc.with_ymd_and_hms(2026, 11, 26, 10, 4, 0).unwrap(), vec!["* * * * *".to_string()]));
        let (at, due) = schedule.next_after(Utc.with_ymd_and_hms(2026, 11, 26, 10, 4, 0).unwrap()).unwrap();
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 11, 26, 10, 5, 0).unwrap());
        assert_eq!(due, vec!["* * * * *", "*/5 * * * *"]);
    }

    #[test]
    fn a_period_overrides_the_expressions() {
        let schedule = Schedule::new(&["0 0 1 1 *".into()], Some(Duration::from_secs(2))).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 10, 3, 20).unwrap();
        assert_eq!(schedule.next_after(now).unwrap().0, now + chrono::Duration::seconds(2));
        assert!(schedule.describe().contains("every 2s"));
        assert!(Schedule::new(&["not a cron".into()], None).unwrap_err().contains("not a cron"));
    }
}
