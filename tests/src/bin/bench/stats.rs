//! Percentiles, and the runs of a loop over the rounds.

use std::time::{Duration, Instant};

pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// The middle value; the mean of the two middle ones for an even count
/// (two rounds in quick mode).
pub fn median(samples: &[f64]) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// One drain of a queue: how many jobs, how long, and the median time of
/// the requests that claimed them.
pub struct Run {
    pub jobs: usize,
    pub elapsed: Duration,
    pub claim_p50: f64,
}

impl Run {
    pub fn jobs_per_sec(&self) -> f64 {
        self.jobs as f64 / self.elapsed.as_secs_f64()
    }
}

/// The runs of one loop, one per round.
#[derive(Default)]
pub struct Rounds(pub Vec<Run>);

impl Rounds {
    fn rates(&self) -> Vec<f64> {
        self.0.iter().map(Run::jobs_per_sec).collect()
    }
    pub fn rate(&self) -> f64 {
        median(&self.rates())
    }
    pub fn claim_p50(&self) -> f64 {
        median(&self.0.iter().map(|r| r.claim_p50).collect::<Vec<_>>())
    }
    /// `median (min..max)` jobs/s, the spread showing how noisy the machine was.
    pub fn rate_spread(&self) -> String {
        let rates = self.rates();
        let (lo, hi) = rates.iter().fold((f64::MAX, 0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        format!("{:>8.0} ({lo:.0}..{hi:.0})", self.rate())
    }
}
