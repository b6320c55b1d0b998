//! [`Record`]: one audit record, written as one JSON object per line.
//!
//! Records are written by hand rather than through serde: a record is
//! made for every audited command, and serde_json's field-by-field
//! serializer with `String` fields cost about 12,000 instructions per
//! record (docs/PERFORMANCE.md, "The audit log"). The record borrows what
//! it shows from the session and the request, and only the strings that
//! can hold anything (names, keys, arguments) are escaped.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

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

fn write_key(field: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(b"\":");
}

fn write_number(value: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut value = value;
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn write_list<'v>(values: impl Iterator<Item = &'v [u8]>, max: usize, out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, value) in values.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(value, max, out);
    }
    out.push(b']');
}

/// Appends `text` as a JSON string.
fn write_text(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    escape(text.as_bytes(), out);
    out.push(b'"');
}

/// Appends `value` as a JSON string: text as it is (invalid UTF-8
/// replaced), cut at `max` bytes (not inside a character) with the count
/// of bytes left out.
fn write_str(value: &[u8], max: usize, out: &mut Vec<u8>) {
    let (shown, left_out) = if value.len() > max {
        // A UTF-8 continuation byte starts 0b10.
        let mut cut = max;
        while cut > 0 && (value[cut] & 0xC0) == 0x80 {
            cut -= 1;
        }
        (&value[..cut], value.len() - cut)
    } else {
        (value, 0)
    };
    out.push(b'"');
    match std::str::from_utf8(shown) {
        Ok(text) => escape(text.as_bytes(), out),
        Err(_) => escape(String::from_utf8_lossy(shown).as_bytes(), out),
    }
    if left_out > 0 {
        out.extend_from_slice(b"... (");
        write_number(left_out as u64, out);
        out.extend_from_slice(b" more bytes)");
    }
    out.push(b'"');
}

/// Appends valid UTF-8 `text` with JSON's escapes: the runs that need
/// none are copied whole.
fn escape(text: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    for (i, &byte) in text.iter().enumerate() {
        if !NEEDS_ESCAPE[usize::from(byte)] {
            continue;
        }
        out.extend_from_slice(&text[start..i]);
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xF)]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
}

/// The bytes JSON strings escape: `"`, `\\` and control characters.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

thread_local! {
    /// The last second formatted (`2026-12-05T10:15:02`), and its number.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Appends `at` as records show times: RFC 3339, UTC, microseconds. The
/// date and time of day are formatted once a second per thread.
fn write_time(at: SystemTime, out: &mut Vec<u8>) {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with(|second| {
        let mut second = second.borrow_mut();
        if second.0 != secs {
            let whole = UNIX_EPOCH + std::time::Duration::from_secs(secs);
            let text = humantime::format_rfc3339_seconds(whole).to_string();
            second.1 = text.trim_end_matches('Z').to_string();
            second.0 = secs;
        }
        out.extend_from_slice(second.1.as_bytes());
    });
    let micros = since.subsec_micros();
    out.push(b'.');
    let mut digits = [b'0'; 6];
    let mut value = micros;
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out.extend_from_slice(&digits);
    out.push(b'Z');
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
