//! The soak's time series: one [`Sample`] every interval, written as CSV.

use std::io::Write;
use std::path::Path;

/// What one sampling interval measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Seconds since the pushes started.
    pub t_s: f64,
    /// Still pushing the run's span (`true`), or delivering its last, late items.
    pub loading: bool,
    pub push_requests: usize,
    pub push_items: u64,
    /// Acknowledgement latency of this interval's push requests, ms.
    pub ack_p50_ms: f64,
    pub ack_p95_ms: f64,
    pub ack_p99_ms: f64,
    /// Trip-builder lag: p95 and max over the vehicles waiting, seconds; how many waited.
    pub trip_lag_p95_s: f64,
    pub trip_lag_max_s: f64,
    pub trip_waiting: usize,
    /// KPI lag, the same way.
    pub kpi_lag_p95_s: f64,
    pub kpi_lag_max_s: f64,
    pub kpi_waiting: usize,
    /// CPU used during the interval, in cores (CPU seconds per second).
    pub fleetd_cpu: f64,
    pub postgres_cpu: f64,
    pub driver_cpu: f64,
    pub fleetd_rss_mb: f64,
    pub db_mb: f64,
    pub sse_events: u64,
    pub api_requests: usize,
    pub api_p95_ms: f64,
    pub webhooks: u64,
}

pub const HEADER: &str = "t_s,phase,push_requests,push_items,ack_p50_ms,ack_p95_ms,ack_p99_ms,\
trip_lag_p95_s,trip_lag_max_s,trip_waiting,kpi_lag_p95_s,kpi_lag_max_s,kpi_waiting,fleetd_cpu,\
postgres_cpu,driver_cpu,fleetd_rss_mb,db_mb,sse_events,api_requests,api_p95_ms,webhooks";

impl Sample {
    pub fn csv_row(&self) -> String {
        format!(
            "{:.1},{},{},{},{:.1},{:.1},{:.1},{:.1},{:.1},{},{:.1},{:.1},{},{:.3},{:.3},{:.3},{:.1},{:.1},{},{},{:.1},{}",
            self.t_s,
            if self.loading { "load" } else { "drain" },
            self.push_requests,
            self.push_items,
            self.ack_p50_ms,
            self.ack_p95_ms,
            self.ack_p99_ms,
            self.trip_lag_p95_s,
            self.trip_lag_max_s,
            self.trip_waiting,
            self.kpi_lag_p95_s,
            self.kpi_lag_max_s,
            self.kpi_waiting,
            self.fleetd_cpu,
            self.postgres_cpu,
            self.driver_cpu,
            self.fleetd_rss_mb,
            self.db_mb,
            self.sse_events,
            self.api_requests,
            self.api_p95_ms,
            self.webhooks,
        )
    }
}

/// Writes the series as CSV with a header line.
pub fn write_csv(path: &Path, samples: &[Sample]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "{HEADER}")?;
    for s in samples {
        writeln!(f, "{}", s.csv_row())?;
    }
    f.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_row_has_a_value_for_every_header_column() {
        let s = Sample { t_s: 10.0, loading: true, fleetd_cpu: 0.25, ..Sample::default() };
        let row = s.csv_row();
        assert_eq!(row.split(',').count(), HEADER.split(',').count());
        assert!(row.starts_with("10.0,load,0,0,"));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("soak.csv");
        write_csv(&path, &[s.clone(), Sample { loading: false, ..s }]).expect("csv");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], HEADER);
        assert!(lines[2].starts_with("10.0,drain,"));
    }
}
