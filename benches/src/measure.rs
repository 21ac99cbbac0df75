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

/// What the timer adds to a fixed computation: the spread of many timings of the
/// same busy loop, which sets the lowest p99 reachable for calls of that length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Floor {
    /// The computation's median, ns.
    pub p50_ns: f64,
    /// Its 99th percentile, ns.
    pub p99_ns: f64,
    /// Its 99.9th percentile, ns.
    pub p999_ns: f64,
    /// Share of samples more than 10 µs above the median.
    pub over_10us: f64,
    /// Samples taken.
    pub samples: u64,
}

fn busy(iterations: u64) -> u64 {
    let mut x = std::hint::black_box(0x9e37_79b9_7f4a_7c15_u64);
    for _ in 0..iterations {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
    x
}

/// Times a busy loop calibrated to `target` (e.g. 20 µs) `samples` times, one
/// timing per sample, and reports its spread.
pub fn timer_floor(target: Duration, samples: u64) -> Result<Floor, MeasureError> {
    // Calibrate: double the iterations until one run takes at least `target`.
    let mut iterations: u64 = 1_000;
    loop {
        let t = Instant::now();
        std::hint::black_box(busy(iterations));
        let took = t.elapsed();
        if took >= target || iterations >= 1 << 40 {
            let scale = target.as_secs_f64() / took.as_secs_f64().max(1e-9);
            iterations = ((iterations as f64 * scale) as u64).max(1);
            break;
        }
        iterations *= 2;
    }
    let mut h = histogram()?;
    for _ in 0..samples.max(1) {
        let t = Instant::now();
        std::hint::black_box(busy(iterations));
        h.saturating_record(picos(t.elapsed(), 1));
    }
    let ns = |ps: u64| ps as f64 / 1000.0;
    let p50_ns = ns(h.value_at_quantile(0.50));
    let over = h.count_between(
        ((p50_ns + 10_000.0) * 1000.0) as u64,
        h.max().max(((p50_ns + 10_000.0) * 1000.0) as u64),
    );
    Ok(Floor {
        p50_ns,
        p99_ns: ns(h.value_at_quantile(0.99)),
        p999_ns: ns(h.value_at_quantile(0.999)),
        over_10us: over as f64 / h.len().max(1) as f64,
        samples: h.len(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn floor_measures_the_calibrated_loop() {
        let f = timer_floor(Duration::from_micros(20), 200).unwrap();
        assert_eq!(f.samples, 200);
        assert!(f.p50_ns > 1_000.0, "{f:?}");
        assert!(f.p99_ns >= f.p50_ns && f.p999_ns >= f.p99_ns);
        assert!((0.0..=1.0).contains(&f.over_10us));
    }
}
