//! Prometheus metrics in the text exposition format, kept in memory.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the request duration histogram, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    durations: BTreeMap<String, Histogram>,
    resigned: u64,
    resign_failures: u64,
    pruned: u64,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *inner.requests.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
        let histogram = inner.durations.entry(route.to_owned()).or_default();
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    pub fn record_resign(&self, success: bool) {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if success {
            inner.resigned += 1;
        } else {
            inner.resign_failures += 1;
        }
    }

    pub fn record_pruned(&self, rows: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.pruned += rows;
    }

    /// Renders every metric; `database_up` comes from a check made by the caller.
    pub fn render(&self, database_up: bool) -> String {
        let inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out = String::new();
        // Writing to a String cannot fail, so the results of writeln! are ignored.
        let _ = writeln!(out, "# HELP signet_http_requests_total HTTP requests by method, route and status.");
        let _ = writeln!(out, "# TYPE signet_http_requests_total counter");
        for ((method, route, status), count) in &inner.requests {
            let _ = writeln!(out, "signet_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}");
        }
        let _ = writeln!(out, "# HELP signet_http_request_duration_seconds HTTP request duration by route.");
        let _ = writeln!(out, "# TYPE signet_http_request_duration_seconds histogram");
        for (route, histogram) in &inner.durations {
            for (count, bound) in histogram.counts.iter().zip(BUCKETS) {
                let _ = writeln!(out, "signet_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(out, "signet_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", histogram.count);
            let _ = writeln!(out, "signet_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", histogram.sum);
            let _ = writeln!(out, "signet_http_request_duration_seconds_count{{route=\"{route}\"}} {}", histogram.count);
        }
        let _ = writeln!(out, "# HELP signet_resign_total Background re-signing runs that wrote a new timestamp.");
        let _ = writeln!(out, "# TYPE signet_resign_total counter");
        let _ = writeln!(out, "signet_resign_total {}", inner.resigned);
        let _ = writeln!(out, "# HELP signet_resign_failures_total Background re-signing runs that failed.");
        let _ = writeln!(out, "# TYPE signet_resign_failures_total counter");
        let _ = writeln!(out, "signet_resign_failures_total {}", inner.resign_failures);
        let _ = writeln!(out, "# HELP signet_pruned_files_total Superseded timestamp and snapshot versions pruned.");
        let _ = writeln!(out, "# TYPE signet_pruned_files_total counter");
        let _ = writeln!(out, "signet_pruned_files_total {}", inner.pruned);
        let _ = writeln!(out, "# HELP signet_database_up Whether the last database check succeeded.");
        let _ = writeln!(out, "# TYPE signet_database_up gauge");
        let _ = writeln!(out, "signet_database_up {}", u8::from(database_up));
        out
    }
}

/// Appends the expiry of each current role, as Unix seconds, labelled by repository and role.
pub fn render_expiries(out: &mut String, expiries: &[(String, String, chrono::DateTime<chrono::Utc>)]) {
    let _ = writeln!(out, "# HELP signet_metadata_expires_timestamp_seconds Expiry of the current version of each role, per repository.");
    let _ = writeln!(out, "# TYPE signet_metadata_expires_timestamp_seconds gauge");
    for (gun, role, expires) in expiries {
        // Repository and role names are validated to characters that need no label escaping.
        let _ = writeln!(out, "signet_metadata_expires_timestamp_seconds{{gun=\"{gun}\",role=\"{role}\"}} {}", expires.timestamp());
    }
}
