//! Latency measurement into an HDR histogram.
//!
//! Calls too fast for the timer are batched: each sample times `batch` back-to-back
//! calls with [`Instant`] and records the mean per call, so percentiles are over
//! batch means (the batch size is reported beside them). Values are recorded in
//! picoseconds so sub-nanosecond means keep their precision.

use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// Smallest batch duration aimed for, so the timer's own cost stays negligible.
const MIN_BATCH: Duration = Duration::from_micros(2);
/// Largest value the histogram tracks: 100 s in picoseconds.
const MAX_PS: u64 = 100_000_000_000_000;

/// Why a measurement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// The histogram could not be created.
    #[error("cannot create the latency histogram: {0}")]
    Histogram(String),
    /// A measured step failed (e.g. a process exited with an error).
    #[error("{0}")]
    Step(String),
}

/// Percentiles of one measured path, in nanoseconds per call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Median.
    pub p50_ns: f64,
    /// 99th percentile.
    pub p99_ns: f64,
    /// Largest sample.
    pub max_ns: f64,
    /// Samples recorded.
    pub samples: u64,
    /// Calls per sample.
    pub batch: u32,
}

impl Stats {
    /// The better of two runs of the same path: lower median and lower p99 each.
    pub fn best(self, other: Stats) -> Stats {
        Stats {
            p50_ns: self.p50_ns.min(other.p50_ns),
            p99_ns: self.p99_ns.min(other.p99_ns),
            max_ns: self.max_ns.min(other.max_ns),
            samples: self.samples.max(other.samples),
            batch: self.batch.max(other.batch),
        }
    }
}

fn histogram() -> Result<Histogram<u64>, MeasureError> {
    Histogram::new_with_bounds(1, MAX_PS, 3).map_err(|e| MeasureError::Histogram(e.to_string()))
}

fn stats(h: &Histogram<u64>, batch: u32) -> Stats {
    let ns = |ps: u64| ps as f64 / 1000.0;
    Stats {
        p50_ns: ns(h.value_at_quantile(0.50)),
        p99_ns: ns(h.value_at_quantile(0.99)),
        max_ns: ns(h.max()),
        samples: h.len(),
        batch,
    }
}

fn picos(d: Duration, calls: u32) -> u64 {
    let total = d.as_nanos().saturating_mul(1000) / u128::from(calls.max(1));
    u64::try_from(total).unwrap_or(u64::MAX).max(1)
}

/// Measures an in-process call: warms up, picks the batch size, then samples until
/// `budget` is spent or `max_samples` are recorded.
pub fn measure<F: FnMut()>(
    mut call: F,
    budget: Duration,
    max_samples: u64,
) -> Result<Stats, MeasureError> {
    // Warm up for a tenth of the budget, estimating the cost of one call.
    let warm_until = Instant::now() + budget / 10;
    let mut warm_calls: u32 = 0;
    let warm_start = Instant::now();
    while Instant::now() < warm_until || warm_calls < 10 {
        call();
        warm_calls = warm_calls.saturating_add(1);
    }
    let per_call = warm_start.elapsed() / warm_calls.max(1);
    let batch = if per_call >= MIN_BATCH {
        1
    } else {
        let nanos = per_call.as_nanos().max(1);
        u32::try_from(MIN_BATCH.as_nanos().div_ceil(nanos)).unwrap_or(u32::MAX)
    };

    let mut h = histogram()?;
    let end = Instant::now() + budget;
    while h.len() < max_samples && Instant::now() < end {
        let start = Instant::now();
        for _ in 0..batch {
            call();
        }
        h.saturating_record(picos(start.elapsed(), batch));
    }
    Ok(stats(&h, batch))
}

/// Measures a step that can fail (e.g. a whole process), one call per sample.
pub fn measure_fallible<F: FnMut() -> Result<(), String>>(
    mut step: F,
    samples: u64,
) -> Result<Stats, MeasureError> {
    step().map_err(MeasureError::Step)?;
    let mut h = histogram()?;
    for _ in 0..samples {
        let start = Instant::now();
        step().map_err(MeasureError::Step)?;
        h.saturating_record(picos(start.elapsed(), 1));
    }
    Ok(stats(&h, 1))
}
