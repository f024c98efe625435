//! Percentiles, throughput and the side-by-side comparison table.

use std::time::Duration;

use serde::Serialize;

use crate::workload::Phase;

/// Summary of one phase for one server.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub operations: usize,
    pub errors: usize,
    pub mib_per_s: f64,
    pub ops_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Nearest-rank percentile of sorted latencies.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Summary {
    pub fn of(phase: &Phase) -> Self {
        let mut sorted = phase.latencies.clone();
        sorted.sort();
        let seconds = phase.wall.as_secs_f64().max(f64::EPSILON);
        Summary {
            operations: phase.latencies.len(),
            errors: phase.errors,
            mib_per_s: phase.bytes as f64 / (1024.0 * 1024.0) / seconds,
            ops_per_s: phase.latencies.len() as f64 / seconds,
            p50_ms: percentile(&sorted, 50.0).as_secs_f64() * 1000.0,
            p99_ms: percentile(&sorted, 99.0).as_secs_f64() * 1000.0,
        }
    }
}

/// One row of the comparison: a metric for both servers and berth's advantage.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub metric: String,
    pub berth: f64,
    pub distribution: f64,
    /// > 1 means Berth is better (for "lower is better" metrics the ratio is inverted).
    pub advantage: f64,
}

impl Row {
    pub fn higher_is_better(metric: &str, berth: f64, distribution: f64) -> Self {
        Row {
            metric: metric.to_owned(),
            berth,
            distribution,
            advantage: berth / distribution.max(f64::EPSILON),
        }
    }

    pub fn lower_is_better(metric: &str, berth: f64, distribution: f64) -> Self {
        Row {
            metric: metric.to_owned(),
            berth,
            distribution,
            advantage: distribution / berth.max(f64::EPSILON),
        }
    }
}

/// Renders rows as a fixed-width table.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<28} {:>14} {:>14} {:>10}\n",
        "metric", "berth", "distribution", "berth is"
    );
    for row in rows {
        out.push_str(&format!(
            "{:<28} {:>14.2} {:>14.2} {:>9.2}x\n",
            row.metric, row.berth, row.distribution, row.advantage
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&sorted[..1], 99.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn advantage_orientation() {
        assert_eq!(Row::higher_is_better("x", 3.0, 1.5).advantage, 2.0);
        assert_eq!(Row::lower_is_better("x", 1.0, 4.0).advantage, 4.0);
    }
}
