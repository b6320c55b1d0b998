//! SLOWLOG: the proxy's own slow log, answered as Valkey answers it.
//!
//! An entry is a request whose reply took at least
//! `slowlog_log_slower_than` microseconds through the proxy, from the read
//! of the request to its reply being ready to write (so it includes the
//! backend's time and the network between): what the client waited for,
//! where a backend's own slow log counts only its execution. The entries
//! look like Valkey's: id, Unix time, duration in microseconds, the
//! arguments as the client sent them (at most 32, each cut at 128 bytes,
//! secrets as `(redacted)`), the client's address and name.
//!
//! Not logged, as on Valkey: commands that skip the slow log there (AUTH,
//! HELLO with credentials, EXEC's own line: the proxy times a transaction
//! as its EXEC, whose line it keeps, as it cannot time the commands
//! inside one by one); and commands that block, whose time is mostly
//! waiting for data (Valkey does not count that time either).
//!
//! The backends' own slow logs: `PROXY SLOWLOG BACKENDS`
//! ([`crate::commands::admin`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use resp::{Frame, Request};
use router::command::Flags;
use router::CommandSpec;

use crate::clients::ClientInfo;

/// Arguments kept per entry (Valkey's `SLOWLOG_ENTRY_MAX_ARGC`).
const MAX_ARGS: usize = 32;
/// Bytes kept per argument (Valkey's `SLOWLOG_ENTRY_MAX_STRING`).
const MAX_ARG_BYTES: usize = 128;

/// The slow log every session records into.
#[derive(Debug)]
pub struct SlowLog {
    /// Microseconds; negative: off.
    threshold_us: AtomicI64,
    max_len: AtomicUsize,
    next_id: AtomicU64,
    entries: Mutex<VecDeque<Entry>>,
}

/// One slow request.
#[derive(Clone, Debug)]
struct Entry {
    id: u64,
    at_secs: u64,
    duration_us: u64,
    args: Vec<Bytes>,
    /// Formatted when shown: a slow backend can make every request an
    /// entry.
    client: std::net::SocketAddr,
    name: String,
}

impl SlowLog {
    /// A log of requests slower than `threshold_us` microseconds (negative:
    /// none), keeping the newest `max_len`.
    pub fn new(threshold_us: i64, max_len: usize) -> SlowLog {
        SlowLog {
            threshold_us: AtomicI64::new(threshold_us),
            max_len: AtomicUsize::new(max_len),
            next_id: AtomicU64::new(0),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// Changes the threshold and the length (a shorter log drops its
    /// oldest entries now).
    pub fn configure(&self, threshold_us: i64, max_len: usize) {
        self.threshold_us.store(threshold_us, Ordering::Relaxed);
        self.max_len.store(max_len, Ordering::Relaxed);
        let mut entries = self.lock();
        while entries.len() > max_len {
            entries.pop_back();
        }
    }

    /// When a request read at `received` becomes slow enough for the log;
    /// `None` when the log is off (sessions keep their requests until
    /// their replies only when it is on).
    pub fn slow_from(&self, received: std::time::Instant) -> Option<std::time::Instant> {
        let threshold = u64::try_from(self.threshold_us.load(Ordering::Relaxed)).ok()?;
        received.checked_add(Duration::from_micros(threshold))
    }

    /// Records the request whose bytes are `raw` ([`Request::raw`]),
    /// answered after `took`, if that is slow and its command (`table`'s
    /// spec for it) is one the slow log shows. The request is decoded
    /// again only then.
    pub fn offer(&self, raw: &Bytes, took: Duration, client: &ClientInfo, table: &router::CommandTable) {
        let threshold = self.threshold_us.load(Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        if threshold < 0 || micros < threshold.unsigned_abs() {
            return;
        }
        let Some(request) = Request::from_raw(raw) else {
            return;
        };
        if !logged(&request, table.lookup(&request).map(|spec| &**spec)) {
            return;
        }
        let request = &request;
        let entry = Entry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            at_secs: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs()),
            duration_us: micros,
            args: shown_args(request),
            client: client.addr,
            name: client.name(),
        };
        let max_len = self.max_len.load(Ordering::Relaxed);
        let mut entries = self.lock();
        entries.push_front(entry);
        entries.truncate(max_len);
    }

    /// `SLOWLOG LEN`.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when the log holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `SLOWLOG RESET`.
    pub fn reset(&self) {
        self.lock().clear();
    }

    /// `SLOWLOG GET`: the newest `count` entries (all with `None`), newest
    /// first, each as Valkey shows it.
    pub fn get(&self, count: Option<usize>) -> Frame {
        let entries = self.lock();
        let count = count.unwrap_or(entries.len());
        Frame::Array(entries.iter().take(count).map(Entry::frame).collect())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Entry {
    fn frame(&self) -> Frame {
        Frame::Array(vec![
            Frame::Integer(self.id as i64),
            Frame::Integer(self.at_secs as i64),
            Frame::Integer(self.duration_us as i64),
            Frame::Array(self.args.iter().cloned().map(Frame::Bulk).collect()),
            Frame::Bulk(Bytes::from(self.client.to_string())),
            Frame::Bulk(Bytes::from(self.name.clone())),
        ])
    }
}

/// Whether the slow log shows `request`: not an unknown command, not one
/// Valkey keeps out of it (AUTH, HELLO), not one that blocks (its time is
/// waiting), not a transaction's EXEC... which the proxy does log, as the
/// only time it has for the commands inside.
fn logged(request: &Request, spec: Option<&CommandSpec>) -> bool {
    let Some(spec) = spec else { return false };
    !(spec.flags.contains(Flags::BLOCKING) || request.is("auth") || request.is("hello"))
}

/// The arguments as Valkey's `slowlogCreateEntry` keeps them.
fn shown_args(request: &Request) -> Vec<Bytes> {
    let secrets = crate::gate::secrets(request);
    let args = request.args();
    let kept = args.len().min(MAX_ARGS);
    (0..kept)
        .map(|i| {
            if kept < args.len() && i == kept - 1 {
                return Bytes::from(format!("... ({} more arguments)", args.len() - kept + 1));
            }
            if secrets.contains(&i) {
                return Bytes::from_static(crate::gate::REDACTED);
            }
            let arg = args.get(i).unwrap_or_default();
            if arg.len() > MAX_ARG_BYTES {
                let mut cut = arg[..MAX_ARG_BYTES].to_vec();
                cut.extend_from_slice(format!("... ({} more bytes)", arg.len() - MAX_ARG_BYTES).as_bytes());
                Bytes::from(cut)
            } else {
                args.bytes(i).unwrap_or_default()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_cut_as_valkey_cuts_them() {
        let long = "x".repeat(200);
        let mut many: Vec<String> = vec!["RPUSH".into(), "list".into()];
        many.extend((0..40).map(|i| i.to_string()));
        let shown = shown_args(&Request::from_args(many.iter().map(String::as_str)));
        assert_eq!(shown.len(), 32);
        assert_eq!(shown[31], Bytes::from("... (11 more arguments)"));
        let shown = shown_args(&Request::from_args(["SET", "k", &long]));
        assert_eq!(shown[2].len(), 128 + "... (72 more bytes)".len());
        assert!(shown[2].ends_with(b"... (72 more bytes)"));
        let shown = shown_args(&Request::from_args([
            "MIGRATE", "h", "1", "k", "0", "5", "AUTH", "secret",
        ]));
        assert_eq!(shown[7], Bytes::from("(redacted)"));
    }
}
