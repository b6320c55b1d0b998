//! INFO across a cluster: one node's sections, with the keyspace of all.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use bytes::Bytes;
use resp::Frame;

/// Merges every primary's INFO reply: the first node's text, with its
/// `# Keyspace` section replaced by the sum over all nodes (keys and
/// expires summed, avg_ttl weighted by expires).
pub fn merge(replies: Vec<Frame>) -> Frame {
    if let Some(error) = replies.iter().find(|r| r.is_error()) {
        return error.clone();
    }
    let texts: Vec<String> = replies.iter().filter_map(text).collect();
    let Some(first) = texts.first() else {
        return replies.into_iter().next().unwrap_or(Frame::Null);
    };
    let mut totals: BTreeMap<String, Counts> = BTreeMap::new();
    for text in &texts {
        for (db, counts) in keyspace(text) {
            totals.entry(db).or_default().add(&counts);
        }
    }
    let merged = replace_keyspace(first, &totals);
    match replies.into_iter().next() {
        Some(Frame::Verbatim { format, .. }) => Frame::Verbatim {
            format,
            text: Bytes::from(merged),
        },
        _ => Frame::Bulk(Bytes::from(merged)),
    }
}

fn text(frame: &Frame) -> Option<String> {
    match frame {
        Frame::Bulk(b) | Frame::Verbatim { text: b, .. } => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

#[derive(Debug, Default)]
struct Counts {
    keys: u64,
    expires: u64,
    ttl_weight: u128,
    other: BTreeMap<String, u64>,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.keys += other.keys;
        self.expires += other.expires;
        self.ttl_weight += other.ttl_weight;
        for (k, v) in &other.other {
            *self.other.entry(k.clone()).or_default() += v;
        }
    }
}

/// `dbN:keys=..,expires=..,avg_ttl=..` lines of the Keyspace section.
fn keyspace(text: &str) -> Vec<(String, Counts)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if let Some(section) = line.strip_prefix("# ") {
            inside = section.trim().eq_ignore_ascii_case("keyspace");
            continue;
        }
        let Some((db, fields)) = line.split_once(':').filter(|_| inside) else {
            continue;
        };
        let mut counts = Counts::default();
        let mut avg_ttl = 0u64;
        for field in fields.trim().split(',') {
            let Some((name, value)) = field.split_once('=') else {
                continue;
            };
            let value: u64 = value.parse().unwrap_or(0);
            match name {
                "keys" => counts.keys = value,
                "expires" => counts.expires = value,
                "avg_ttl" => avg_ttl = value,
                other => {
                    counts.other.insert(other.to_string(), value);
                }
            }
        }
        counts.ttl_weight = u128::from(avg_ttl) * u128::from(counts.expires);
        out.push((db.to_string(), counts));
    }
    out
}

fn replace_keyspace(text: &str, totals: &BTreeMap<String, Counts>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    let mut written = false;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end();
        if let Some(section) = bare.strip_prefix("# ") {
            inside = section.trim().eq_ignore_ascii_case("keyspace");
            out.push_str(line);
            if inside {
                write_totals(&mut out, totals);
                written = true;
            }
            continue;
        }
        if !inside {
            out.push_str(line);
        }
    }
    if !written && !totals.is_empty() {
        out.push_str("\r\n# Keyspace\r\n");
        write_totals(&mut out, totals);
    }
    out
}

fn write_totals(out: &mut String, totals: &BTreeMap<String, Counts>) {
    for (db, counts) in totals {
        let avg_ttl = match counts.expires {
            0 => 0,
            n => counts.ttl_weight / u128::from(n),
        };
        let _ = write!(
            out,
            "{db}:keys={},expires={},avg_ttl={avg_ttl}",
            counts.keys, counts.expires
        );
        for (name, value) in &counts.other {
            let _ = write!(out, ",{name}={value}");
        }
        out.push_str("\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_is_summed() {
        let a = "# Server\r\nvalkey_version:9.1.2\r\n\r\n# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=100,subexpiry=0\r\n";
        let b = "# Server\r\nvalkey_version:9.1.2\r\n\r\n# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=300,subexpiry=0\r\ndb3:keys=1,expires=0,avg_ttl=0,subexpiry=0\r\n";
        let merged = merge(vec![Frame::Bulk(Bytes::from(a)), Frame::Bulk(Bytes::from(b))]);
        let text = String::from_utf8_lossy(merged.as_bytes().unwrap()).into_owned();
        assert!(text.starts_with("# Server\r\nvalkey_version:9.1.2\r\n"));
        assert!(
            text.contains("db0:keys=5,expires=2,avg_ttl=200,subexpiry=0\r\n"),
            "{text}"
        );
        assert!(
            text.contains("db3:keys=1,expires=0,avg_ttl=0,subexpiry=0\r\n"),
            "{text}"
        );
    }
}
