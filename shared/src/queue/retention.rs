//! Retention of finished work: the cron's sweep (`cogo.retention_sweep` in
//! migrations/functions/retention.sql) deletes finished jobs past their age
//! in batches, and the stored objects of their artifacts go after them.

use serde::Deserialize;

use crate::config::RetentionConfig;
use crate::postgrest::sql_function;

/// R2's `delete` and Supabase Storage's bulk delete take at most this many
/// keys per call.
pub const MAX_OBJECTS_PER_DELETE: usize = 1000;

sql_function! {
    /// `cogo.retention_sweep`: one batch of at most `batch` finished jobs
    /// deleted, with their events, dead letters and artifact rows. An age of
    /// `None` keeps that kind of job for ever.
    pub struct RetentionSweep => "retention_sweep" -> Swept {
        pub finished_hours: Option<u32>,
        pub failed_hours: Option<u32>,
        pub batch: u32,
    }
}

impl RetentionSweep {
    /// The sweep the configuration asks for; `None` when it keeps everything.
    pub fn from_config(config: &RetentionConfig) -> Option<RetentionSweep> {
        let age = |hours: u32| (hours > 0).then_some(hours);
        let sweep = RetentionSweep {
            finished_hours: age(config.finished_hours),
            failed_hours: age(config.failed_hours),
            batch: config.batch,
        };
        (sweep.finished_hours.is_some() || sweep.failed_hours.is_some()).then_some(sweep)
    }
}

/// What one batch deleted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Swept {
    pub jobs: u64,
    pub events: u64,
    pub dead_letters: u64,
    /// The deleted artifact rows' objects, still in the bucket.
    pub artifacts: Vec<StoredObject>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StoredObject {
    pub bucket: String,
    pub path: String,
}

/// The objects to delete, as one call's worth of paths per bucket.
pub fn deletions(objects: &[StoredObject]) -> Vec<(String, Vec<String>)> {
    let mut buckets: Vec<(String, Vec<String>)> = Vec::new();
    for object in objects {
        match buckets.iter_mut().find(|(b, paths)| *b == object.bucket && paths.len() < MAX_OBJECTS_PER_DELETE) {
            Some((_, paths)) => paths.push(object.path.clone()),
            None => buckets.push((object.bucket.clone(), vec![object.path.clone()])),
        }
    }
    buckets
}

/// The totals of one cron tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub batches: u32,
    pub jobs: u64,
    pub events: u64,
    pub dead_letters: u64,
    pub objects: u64,
    /// The last batch was full when the tick's cap stopped it: more are due.
    pub more: bool,
}

impl Tally {
    /// Counts a batch in; answers whether to sweep another. A batch short
    /// of the batch size means nothing more is due (skipped rows, held by
    /// live work, wait for the next tick); the per-tick cap bounds the rest.
    pub fn add(&mut self, swept: &Swept, config: &RetentionConfig) -> bool {
        self.batches += 1;
        self.jobs += swept.jobs;
        self.events += swept.events;
        self.dead_letters += swept.dead_letters;
        self.objects += swept.artifacts.len() as u64;
        let full = swept.jobs >= u64::from(config.batch);
        self.more = full && self.batches >= config.max_batches;
        full && !self.more
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(finished_hours: u32, failed_hours: u32) -> RetentionConfig {
        RetentionConfig { finished_hours, failed_hours, batch: 3, max_batches: 2 }
    }

    #[test]
    fn zero_hours_keep_that_kind_and_both_zero_sweep_nothing() {
        let sweep = RetentionSweep::from_config(&config(168, 0)).unwrap();
        assert_eq!(
            serde_json::to_value(&sweep).unwrap(),
            json!({"p_finished_hours": 168, "p_failed_hours": null, "p_batch": 3})
        );
        assert_eq!(RetentionSweep::from_config(&config(0, 336)).unwrap().finished_hours, None);
        assert_eq!(RetentionSweep::from_config(&config(0, 0)), None);
    }

    fn swept(jobs: u64, objects: usize) -> Swept {
        let artifacts = (0..objects).map(|i| StoredObject { bucket: "artifacts".into(), path: format!("j/{i}") });
        Swept { jobs, events: jobs * 4, dead_letters: 1, artifacts: artifacts.collect() }
    }

    #[test]
    fn sweeps_again_only_after_a_full_batch_and_below_the_cap() {
        let config = config(1, 1);
        let mut tally = Tally::default();
        assert!(tally.add(&swept(3, 2), &config), "a full batch: more may be due");
        assert!(!tally.add(&swept(3, 0), &config), "the cap");
        assert_eq!(tally, Tally { batches: 2, jobs: 6, events: 24, dead_letters: 2, objects: 2, more: true });
        let mut tally = Tally::default();
        assert!(!tally.add(&swept(2, 0), &config), "a short batch: nothing more is due");
        assert!(!tally.more);
    }

    #[test]
    fn the_answer_reads_as_the_sql_function_writes_it() {
        let answer = json!({"jobs": 2, "events": 7, "deadLetters": 1,
                            "artifacts": [{"bucket": "artifacts", "path": "j/a.txt"}]});
        let swept: Swept = serde_json::from_value(answer).unwrap();
        assert_eq!((swept.jobs, swept.events, swept.dead_letters), (2, 7, 1));
        assert_eq!(swept.artifacts, vec![StoredObject { bucket: "artifacts".into(), path: "j/a.txt".into() }]);
    }

    #[test]
    fn deletions_group_by_bucket_in_calls_of_at_most_1000() {
        let object = |bucket: &str, i: usize| StoredObject { bucket: bucket.into(), path: format!("j/{i}") };
        let mut objects: Vec<StoredObject> = (0..1001).map(|i| object("artifacts", i)).collect();
        objects.insert(1, object("other", 0));
        let calls = deletions(&objects);
        let shape: Vec<(&str, usize)> = calls.iter().map(|(b, p)| (b.as_str(), p.len())).collect();
        assert_eq!(shape, vec![("artifacts", 1000), ("other", 1), ("artifacts", 1)]);
        assert_eq!(calls[0].1[..2], ["j/0".to_string(), "j/1".to_string()]);
        assert!(deletions(&[]).is_empty());
    }
}
