//! [`Exposition`]: metric families written in the Prometheus text format
//! (version 0.0.4): a `# HELP` and a `# TYPE` line per family, then its
//! samples, label values escaped.

use std::fmt::Write as _;

/// What a family is, for its `# TYPE` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (its name ends in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Cumulative `_bucket{le}` counts with `_sum` and `_count`.
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Text being written, one family after the other.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// Starts family `name`: its help and type lines. Write each family
    /// once, all its samples right after.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        let _ = write!(self.text, "# HELP {name} {help}\n# TYPE {name} {}\n", kind.name());
        self
    }

    /// One sample: `name{labels} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str(label);
                self.text.push_str("=\"");
                escape_into(&mut self.text, value);
                self.text.push('"');
            }
            self.text.push('}');
        }
        self.text.push(' ');
        write_value(&mut self.text, value);
        self.text.push('\n');
        self
    }

    /// The samples of one histogram series: `buckets` are (upper bound in
    /// seconds, how many observations were at most that), ascending; the
    /// `+Inf` bucket is `count`.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) {
        let bucket = format!("{name}_bucket");
        let bounds: Vec<String> = buckets.iter().map(|&(bound, _)| format_value(bound)).collect();
        let les = bounds.iter().map(String::as_str).chain(["+Inf"]);
        let counts = buckets.iter().map(|&(_, at_most)| at_most).chain([count]);
        for (le, at_most) in les.zip(counts) {
            let mut with_le = labels.to_vec();
            with_le.push(("le", le));
            self.sample(&bucket, &with_le, at_most as f64);
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count as f64);
    }

    /// Adds text already in the format (another exporter's).
    pub fn append(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// The text written.
    pub fn finish(self) -> String {
        self.text
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn format_value(value: f64) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// Integers without a fraction, other numbers as Rust prints them (the
/// shortest text that reads back as the same `f64`).
fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_families_samples_and_histograms() {
        let mut out = Exposition::default();
        out.family("redis_commands_total", Kind::Counter, "Calls per command.")
            .sample("redis_commands_total", &[("cmd", "get")], 1000.0)
            .sample("redis_commands_total", &[("cmd", "a\"b\\c\nd")], 0.5);
        out.family("x_seconds", Kind::Histogram, "Latency.");
        out.histogram(
            "x_seconds",
            &[("cmd", "get")],
            &[(0.001, 3), (0.01, 5)],
            0.0125,
            6,
        );
        assert_eq!(
            out.finish(),
            "# HELP redis_commands_total Calls per command.\n# TYPE redis_commands_total counter\n\
             redis_commands_total{cmd=\"get\"} 1000\n\
             redis_commands_total{cmd=\"a\\\"b\\\\c\\nd\"} 0.5\n\
             # HELP x_seconds Latency.\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{cmd=\"get\",le=\"0.001\"} 3\n\
             x_seconds_bucket{cmd=\"get\",le=\"0.01\"} 5\n\
             x_seconds_bucket{cmd=\"get\",le=\"+Inf\"} 6\n\
             x_seconds_sum{cmd=\"get\"} 0.0125\n\
             x_seconds_count{cmd=\"get\"} 6\n"
        );
    }
}
