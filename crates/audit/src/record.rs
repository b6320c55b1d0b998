//! [`Record`]: one audit record, written as one JSON object per line.
//!
//! Records are written by hand rather than through serde: a record is
//! made for every audited command, and serde_json's field-by-field
//! serializer with `String` fields cost about 12,000 instructions per
//! record (docs/PERFORMANCE.md, "The audit log"). The record borrows what
//! it shows from the session and the request, and only the strings that
//! can hold anything (names, keys, arguments) are escaped.

use std::time::SystemTime;

use crate::json::{write_key, write_list, write_number, write_text, write_time};

/// One audit record, borrowing what it shows. Fields that do not apply
/// to an event are left out of its line. The queue puts its `seq` first
/// when it takes it ([`crate::Audit::record`]): a per-process sequence
/// number, from 1, with no gaps (a record that could not be kept is
/// accounted for by a gap record).
#[derive(Clone, Debug)]
pub struct Record<'a> {
    /// When it happened (written UTC, microseconds:
    /// `2026-12-05T10:15:02.123456Z`).
    pub time: SystemTime,
    /// The proxy's name.
    pub node: &'a str,
    /// What happened: connect, disconnect, auth, denied, admin, command.
    pub event: &'static str,
    /// The client's id (CLIENT ID).
    pub conn: u64,
    /// The client's address.
    pub client: &'a str,
    /// The user the client is logged in as (the name tried, for AUTH).
    pub user: &'a str,
    /// Its tenant (`""` for none).
    pub tenant: &'a str,
    /// Its database.
    pub db: Option<u32>,
    /// Its CLIENT SETNAME name (left out when empty).
    pub name: &'a str,
    /// Its library, CLIENT SETINFO's `name/version` (left out when empty).
    pub lib: &'a str,
    /// The command as the command table names it (`config|set`), written
    /// upper case with a space (`CONFIG SET`).
    pub cmd: Option<&'a str>,
    /// Its keys, as the client named them, each cut at `max_arg_bytes`.
    pub keys: Option<Vec<&'a [u8]>>,
    /// Its arguments after the name, secrets already replaced, each cut
    /// at `max_arg_bytes`.
    pub args: Option<Vec<&'a [u8]>>,
    /// Where keys and arguments are cut, with the count of bytes left out
    /// (`... (123 more bytes)`), as Valkey's slow log cuts them.
    pub max_arg_bytes: usize,
    /// How many arguments it had, the name included.
    pub argc: Option<usize>,
    /// Its size on the wire.
    pub bytes_in: Option<usize>,
    /// The backend nodes its keys live on (every primary for a command
    /// sent to all of them); empty for a keyless command sent to one node.
    pub backends: Option<Vec<&'a str>>,
    /// How it ended.
    pub outcome: Outcome<'a>,
}

/// How a request ended: the fields of a record after its command, which a
/// command queued in MULTI learns only when EXEC answers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome<'a> {
    /// `ok`, `error`, `queued`, `aborted` (EXEC ran nothing),
    /// `discarded`.
    pub status: Option<&'static str>,
    /// The error's first word (`ERR`, `NOPERM`, `WRONGTYPE`, ...).
    pub error: Option<&'a str>,
    /// The reply's type ([`reply_type`]).
    pub reply: Option<&'static str>,
    /// From the request's arrival to its reply.
    pub latency_us: Option<u64>,
    /// Shared by the commands of one MULTI ... EXEC.
    pub txn: Option<u64>,
    /// Why a client left (disconnect).
    pub reason: Option<&'static str>,
}

impl<'a> Record<'a> {
    /// A record of `event` at `time`, with nothing about a client yet.
    pub fn new(event: &'static str, time: SystemTime, node: &'a str) -> Record<'a> {
        Record {
            time,
            node,
            event,
            conn: 0,
            client: "",
            user: "",
            tenant: "",
            db: None,
            name: "",
            lib: "",
            cmd: None,
            keys: None,
            args: None,
            max_arg_bytes: usize::MAX,
            argc: None,
            bytes_in: None,
            backends: None,
            outcome: Outcome::default(),
        }
    }

    /// Appends its JSON object, `{...}` without a newline.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.write_head(out);
        self.outcome.write_tail(out);
    }

    /// Appends its JSON object up to its [`Outcome`], which
    /// [`Outcome::write_tail`] completes.
    pub fn write_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"time\":\"");
        write_time(self.time, out);
        out.extend_from_slice(b"\",\"node\":");
        write_text(self.node, out);
        out.extend_from_slice(b",\"event\":\"");
        out.extend_from_slice(self.event.as_bytes());
        out.extend_from_slice(b"\",\"conn\":");
        write_number(self.conn, out);
        out.extend_from_slice(b",\"client\":");
        write_text(self.client, out);
        out.extend_from_slice(b",\"user\":");
        write_text(self.user, out);
        out.extend_from_slice(b",\"tenant\":");
        write_text(self.tenant, out);
        if let Some(db) = self.db {
            out.extend_from_slice(b",\"db\":");
            write_number(u64::from(db), out);
        }
        for (field, value) in [("name", self.name), ("lib", self.lib)] {
            if !value.is_empty() {
                write_key(field, out);
                write_text(value, out);
            }
        }
        if let Some(cmd) = self.cmd {
            out.extend_from_slice(b",\"cmd\":\"");
            // Command table names are `[a-z0-9_|-]`: nothing to escape.
            for &byte in cmd.as_bytes() {
                out.push(match byte {
                    b'|' => b' ',
                    _ => byte.to_ascii_uppercase(),
                });
            }
            out.push(b'"');
        }
        for (field, values) in [("keys", &self.keys), ("args", &self.args)] {
            if let Some(values) = values {
                write_key(field, out);
                write_list(values.iter().copied(), self.max_arg_bytes, out);
            }
        }
        for (field, value) in [("argc", self.argc), ("bytes_in", self.bytes_in)] {
            if let Some(value) = value {
                write_key(field, out);
                write_number(value as u64, out);
            }
        }
        if let Some(backends) = &self.backends {
            write_key("backends", out);
            out.push(b'[');
            for (i, backend) in backends.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_text(backend, out);
            }
            out.push(b']');
        }
    }
}

impl Outcome<'_> {
    /// Appends its fields and the `}` that ends the record.
    pub fn write_tail(&self, out: &mut Vec<u8>) {
        for (field, value) in [
            ("status", self.status),
            ("reply", self.reply),
            ("reason", self.reason),
        ] {
            if let Some(value) = value {
                write_key(field, out);
                write_text(value, out);
            }
        }
        if let Some(error) = self.error {
            write_key("error", out);
            write_text(error, out);
        }
        for (field, value) in [("latency_us", self.latency_us), ("txn", self.txn)] {
            if let Some(value) = value {
                write_key(field, out);
                write_number(value, out);
            }
        }
        out.push(b'}');
    }
}

/// `at` as records show times.
pub fn timestamp(at: SystemTime) -> String {
    let mut out = Vec::with_capacity(27);
    write_time(at, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// The type of a reply as records name it, from its first bytes (RESP2
/// or RESP3).
pub fn reply_type(first: &[u8]) -> &'static str {
    match first {
        [b'+', ..] => "simple",
        [b'-', ..] | [b'!', ..] => "error",
        [b':', ..] => "integer",
        [b'$', b'-', ..] | [b'*', b'-', ..] | [b'_', ..] => "null",
        [b'$', ..] => "bulk",
        [b'*', ..] => "array",
        [b'%', ..] => "map",
        [b'~', ..] => "set",
        [b'#', ..] => "boolean",
        [b',', ..] => "double",
        [b'(', ..] => "bignumber",
        [b'=', ..] => "verbatim",
        [b'>', ..] => "push",
        [b'|', ..] => "attribute",
        _ => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn json(record: &Record<'_>) -> serde_json::Value {
        let mut out = Vec::new();
        record.write_json(&mut out);
        serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
    }

    #[test]
    fn a_record_is_one_json_object_without_the_fields_that_do_not_apply() {
        let at = UNIX_EPOCH + std::time::Duration::from_micros(1_500_001);
        let mut record = Record::new("connect", at, "proxy-a");
        record.client = "127.0.0.1:5000";
        let mut out = Vec::new();
        record.write_json(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"time":"1970-01-01T00:00:01.500001Z","node":"proxy-a","event":"connect","conn":0,"client":"127.0.0.1:5000","user":"","tenant":""}"#
        );
    }

    #[test]
    fn what_a_client_sends_is_escaped_cut_and_made_text() {
        let mut record = Record::new("command", SystemTime::now(), "n");
        record.cmd = Some("config|set");
        record.name = "say \"hi\"\n";
        record.keys = Some(vec![b"tab\there", b"\xff\xfe", "aé".as_bytes(), b"abcdefghij"]);
        record.max_arg_bytes = 8;
        record.outcome.status = Some("ok");
        record.outcome.txn = Some(7);
        let value = json(&record);
        assert_eq!(value["cmd"], "CONFIG SET");
        assert_eq!(value["name"], "say \"hi\"\n");
        assert_eq!(
            value["keys"],
            serde_json::json!([
                "tab\there",
                "\u{fffd}\u{fffd}",
                "aé",
                "abcdefgh... (2 more bytes)"
            ])
        );
        // Not inside a character.
        record.keys = Some(vec!["aé".as_bytes()]);
        record.max_arg_bytes = 2;
        assert_eq!(json(&record)["keys"][0], "a... (2 more bytes)");
        assert_eq!(
            (json(&record)["status"].clone(), json(&record)["txn"].clone()),
            ("ok".into(), 7.into())
        );
        let control = "\u{1}";
        record.name = control;
        assert_eq!(json(&record)["name"], control);
    }

    #[test]
    fn times_are_utc_with_microseconds() {
        let at = UNIX_EPOCH + std::time::Duration::from_micros(1_764_930_902_000_042);
        assert_eq!(timestamp(at), "2025-12-05T10:35:02.000042Z");
        assert_eq!(reply_type(b"$-1\r\n"), "null");
        assert_eq!(reply_type(b"*2\r\n"), "array");
    }
}
