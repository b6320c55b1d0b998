//! The statistics in Valkey's own shapes, for tools that read a server's:
//! `INFO commandstats` and `INFO latencystats` lines, and the reply of
//! `LATENCY HISTOGRAM`.
//!
//! Valkey times a command's execution; the proxy's figures are the time a
//! client waited for the reply through the proxy (backend and network
//! included), which is what its clients see as the server's.

use std::fmt::Write as _;

use bytes::Bytes;
use resp::Frame;

use super::command::Snapshot;
use super::registry::{StatsRegistry, UNKNOWN};

/// The percentiles `INFO latencystats` shows (Valkey's default
/// `latency-tracking-info-percentiles`).
const PERCENTILES: [(&str, f64); 3] = [("50", 0.50), ("99", 0.99), ("99.9", 0.999)];

/// `LATENCY HISTOGRAM`'s buckets, as Valkey's log iteration of its
/// nanosecond histogram gives them: from 1,024 ns, doubling, each
/// labelled with its bound in whole microseconds.
fn histogram_bounds_us() -> impl Iterator<Item = u64> {
    (0..32).map(|doubling| (1024u64 << doubling) / 1000)
}

impl StatsRegistry {
    /// The `# Commandstats` section: `cmdstat_<name>:calls=..,usec=..,
    /// usec_per_call=..,rejected_calls=0,failed_calls=..` per command used.
    pub fn commandstats_section(&self) -> String {
        let mut out = String::from("# Commandstats\r\n");
        for (name, s) in self.known() {
            let per_call = s.latency_sum_us as f64 / s.calls as f64;
            let _ = write!(
                out,
                "cmdstat_{name}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls=0,failed_calls={}\r\n",
                s.calls, s.latency_sum_us, s.errors
            );
        }
        out
    }

    /// The `# Latencystats` section: `latency_percentiles_usec_<name>:
    /// p50=..,p99=..,p99.9=..` per command used.
    pub fn latencystats_section(&self) -> String {
        let mut out = String::from("# Latencystats\r\n");
        for (name, s) in self.known() {
            let shown: Vec<String> = PERCENTILES
                .iter()
                .map(|(label, quantile)| {
                    format!("p{label}={:.3}", s.latency.value_at_quantile(*quantile) as f64)
                })
                .collect();
            let _ = write!(out, "latency_percentiles_usec_{name}:{}\r\n", shown.join(","));
        }
        out
    }

    /// `LATENCY HISTOGRAM [command ...]`: for each command used (of those
    /// named, when some are), its calls and the cumulative count at each
    /// bucket where the count grows.
    pub fn latency_histogram(&self, named: &[String]) -> Frame {
        let entries = self
            .known()
            .into_iter()
            .filter(|(name, _)| {
                named.is_empty() || named.iter().any(|wanted| wanted.eq_ignore_ascii_case(name))
            })
            .map(|(name, s)| {
                let mut buckets = Vec::new();
                let mut previous = 0;
                for bound in histogram_bounds_us() {
                    let count = s.latency.count_at_most(bound);
                    if count > previous {
                        buckets.push((Frame::Integer(bound as i64), Frame::Integer(count as i64)));
                        previous = count;
                    }
                    if count == s.calls {
                        break;
                    }
                }
                let command = Frame::Map(vec![
                    (bulk("calls"), Frame::Integer(s.calls as i64)),
                    (bulk("histogram_usec"), Frame::Map(buckets)),
                ]);
                (Frame::Bulk(Bytes::from(name)), command)
            })
            .collect();
        Frame::Map(entries)
    }

    /// Every command of the table used so far (not the unknown ones).
    fn known(&self) -> Vec<(String, Snapshot)> {
        self.snapshot()
            .into_iter()
            .filter(|(name, _)| name != UNKNOWN)
            .collect()
    }
}

fn bulk(text: &'static str) -> Frame {
    Frame::Bulk(Bytes::from_static(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sections_and_histogram_in_valkeys_shapes() {
        let registry = StatsRegistry::default();
        let get = registry.command("get");
        for micros in [1, 3, 3, 10, 1000] {
            get.record(Duration::from_micros(micros), None, micros == 10);
        }
        registry
            .command(UNKNOWN)
            .record(Duration::from_micros(1), None, true);
        assert_eq!(
            registry.commandstats_section(),
            "# Commandstats\r\ncmdstat_get:calls=5,usec=1017,usec_per_call=203.40,rejected_calls=0,failed_calls=1\r\n"
        );
        assert_eq!(
            registry.latencystats_section(),
            "# Latencystats\r\nlatency_percentiles_usec_get:p50=3.000,p99=1000.000,p99.9=1000.000\r\n"
        );
        let histogram = registry.latency_histogram(&[]);
        let Frame::Map(commands) = &histogram else {
            panic!("{histogram:?}")
        };
        assert_eq!(commands.len(), 1);
        let expected = Frame::Map(vec![
            (bulk("calls"), Frame::Integer(5)),
            (
                bulk("histogram_usec"),
                Frame::Map(vec![
                    (Frame::Integer(1), Frame::Integer(1)),
                    (Frame::Integer(4), Frame::Integer(3)),
                    (Frame::Integer(16), Frame::Integer(4)),
                    (Frame::Integer(1048), Frame::Integer(5)),
                ]),
            ),
        ]);
        assert_eq!(commands[0], (Frame::Bulk(Bytes::from("get")), expected));
        assert_eq!(registry.latency_histogram(&["set".into()]), Frame::Map(vec![]));
    }
}
