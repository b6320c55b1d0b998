//! MONITOR: every command the proxy's clients send, shown to monitoring
//! clients as one Valkey server shows it.
//!
//! The proxy writes the lines itself, from the commands its sessions
//! carry out, rather than passing on its backends' MONITOR output. A
//! backend would show the proxy's connections instead of the clients,
//! backend databases and namespaced keys instead of what the client sent,
//! the proxy's own work (topology refreshes, per-slot blocks), and every
//! other tenant's commands. Here each line is what Valkey's
//! `replicationFeedMonitors` prints for the client:
//!
//! ```text
//! +1733338200.123456 [0 127.0.0.1:52814] "SET" "key" "value"
//! ```
//!
//! with the client's address and database and its arguments as sent
//! (secrets as `(redacted)`), for the commands Valkey shows: not the
//! admin ones (CONFIG, DEBUG, MONITOR, ...), not a command refused as
//! unknown or with the wrong arity, and a transaction's commands when EXEC
//! runs them, before the EXEC line. What the backends run inside a script
//! (Valkey's `[0 lua]` lines) is not shown.
//!
//! A tenant's monitoring client sees its tenant's clients' commands only
//! (as they sent them, without the prefix); an operator sees every
//! client's.
//!
//! A monitoring client gets the lines through its session's event channel
//! ([`MONITOR_TAG`]). A client that reads too slowly for it to hold
//! [`crate::pubsub`]'s event backlog misses lines rather than making the
//! proxy hold them without bound; the other clients never wait for it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pool::StreamEvent;
use resp::Request;
use router::command::{CommandSpec, Flags};
use tokio::sync::mpsc;

/// The tag of a MONITOR line on a session's event channel: no backend
/// link has it, nor a redirected invalidation
/// ([`crate::clients::REDIRECTED`]).
pub const MONITOR_TAG: u64 = crate::clients::REDIRECTED - 1;

/// The monitoring clients of the proxy.
#[derive(Debug, Default)]
pub struct Monitors {
    /// How many are registered: one relaxed load per command when none is.
    active: AtomicUsize,
    /// Their event channels, by client id and tenant (0: every client's
    /// lines).
    sinks: Mutex<Vec<Sink>>,
}

#[derive(Debug)]
struct Sink {
    id: u64,
    tenant: u16,
    events: mpsc::Sender<StreamEvent>,
}

impl Monitors {
    /// True when some client monitors.
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    /// How many clients monitor (one that left counts until the next line
    /// finds its channel closed).
    pub fn count(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Registers client `id`, of `tenant` (0: none): from now on every
    /// line it may see goes to `events`, until that channel closes (RESET,
    /// or the client left).
    pub fn add(&self, id: u64, tenant: u16, events: mpsc::Sender<StreamEvent>) {
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        sinks.retain(|sink| sink.id != id);
        sinks.push(Sink { id, tenant, events });
        self.active.store(sinks.len(), Ordering::Relaxed);
    }

    /// Shows `requests` (one command, or a transaction's commands and its
    /// EXEC), sent by the client at `peer` of `tenant` in database `db`.
    pub fn feed<'a>(
        &self,
        requests: impl IntoIterator<Item = &'a Request>,
        db: u32,
        peer: &str,
        tenant: u16,
    ) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        for request in requests {
            let line = Bytes::from(line(request, db, peer, now.as_secs(), now.subsec_micros()));
            sinks.retain(|sink| {
                if sink.tenant != 0 && sink.tenant != tenant {
                    return true;
                }
                let event = StreamEvent {
                    tag: MONITOR_TAG,
                    frame: Some(line.clone()),
                };
                // Full: this monitor misses the line. Closed: it is gone.
                !matches!(
                    sink.events.try_send(event),
                    Err(mpsc::error::TrySendError::Closed(_))
                )
            });
        }
        self.active.store(sinks.len(), Ordering::Relaxed);
    }
}

/// True when Valkey shows `request`, a call of `spec`, to its monitors
/// once it has run: a known command with the right arity, not an admin
/// one; and, for a client that was in MULTI, only what runs at once
/// (DISCARD, QUIT, RESET): the queued commands and EXEC are shown by EXEC
/// ([`Monitors::feed`] from the transaction).
pub fn shown(request: &Request, spec: Option<&CommandSpec>, was_in_multi: bool) -> bool {
    let runs_now = !was_in_multi || request.is("discard") || request.is("quit") || request.is("reset");
    runs_now
        && !request.is("exec")
        && spec.is_some_and(|spec| spec.arity_ok(request.len()) && !spec.flags.contains(Flags::ADMIN))
}

/// One MONITOR line, as `replicationFeedMonitors` writes it.
fn line(request: &Request, db: u32, peer: &str, secs: u64, micros: u32) -> Vec<u8> {
    let mut out = format!("+{secs}.{micros:06} [{db} {peer}]").into_bytes();
    let secrets = crate::gate::secrets(request);
    for (i, arg) in request.args().iter().enumerate() {
        out.push(b' ');
        if secrets.contains(&i) {
            quoted(crate::gate::REDACTED, &mut out);
        } else {
            quoted(arg, &mut out);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `arg` quoted as `sdscatrepr` quotes it.
fn quoted(arg: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &byte in arg {
        match byte {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', byte]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            b' '..=b'~' => out.push(byte),
            other => out.extend_from_slice(format!("\\x{other:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(args: &[&str]) -> String {
        String::from_utf8(line(&Request::from_args(args), 3, "127.0.0.1:5000", 17, 42)).unwrap()
    }

    #[test]
    fn lines_are_valkeys() {
        assert_eq!(
            text(&["SET", "k", "a \"b\"\n\x01é"]),
            "+17.000042 [3 127.0.0.1:5000] \"SET\" \"k\" \"a \\\"b\\\"\\n\\x01\\xc3\\xa9\"\r\n"
        );
        assert_eq!(
            text(&["auth", "user", "pw"]),
            "+17.000042 [3 127.0.0.1:5000] \"auth\" \"(redacted)\" \"(redacted)\"\r\n"
        );
        assert_eq!(
            text(&["HELLO", "3", "AUTH", "u", "p", "SETNAME", "n"]),
            "+17.000042 [3 127.0.0.1:5000] \"HELLO\" \"3\" \"AUTH\" \"(redacted)\" \"(redacted)\" \"SETNAME\" \"n\"\r\n"
        );
        assert_eq!(
            text(&["MIGRATE", "h", "1", "", "0", "5", "AUTH2", "u", "p", "KEYS", "k"]),
            "+17.000042 [3 127.0.0.1:5000] \"MIGRATE\" \"h\" \"1\" \"\" \"0\" \"5\" \"AUTH2\" \"(redacted)\" \"(redacted)\" \"KEYS\" \"k\"\r\n"
        );
    }
}
