//! [`Record`]: one audit record, written as one JSON object per line.

use std::time::SystemTime;

use serde::Serialize;

/// One audit record. Fields that do not apply to an event are left out of
/// its line. The queue puts its `seq` first when it takes it
/// ([`crate::Audit::record`]): a per-process sequence number, from 1,
/// with no gaps (a record that could not be kept is accounted for by a
/// gap record).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Record {
    /// UTC, microseconds: `2026-12-05T10:15:02.123456Z`.
    pub time: String,
    /// The proxy's name.
    pub node: String,
    /// What happened: connect, disconnect, auth, denied, admin, command.
    pub event: &'static str,
    /// The client's id (CLIENT ID).
    pub conn: u64,
    /// The client's address.
    pub client: String,
    /// The user the client is logged in as (the name tried, for a failed
    /// AUTH).
    pub user: String,
    /// Its tenant (`""` for none).
    pub tenant: String,
    /// Its database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db: Option<u32>,
    /// Its CLIENT SETNAME name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Its library (CLIENT SETINFO LIB-NAME and LIB-VER).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lib: String,
    /// The command, upper case, with its subcommand (`CONFIG SET`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// Its keys, as the client named them (`payload` keys or args).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
    /// Its arguments after the name, cut and with secrets redacted
    /// (`payload = "args"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// How many arguments it had, the name included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argc: Option<usize>,
    /// Its size on the wire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<usize>,
    /// `ok`, `error`, `queued` (in MULTI, until EXEC), `aborted`
    /// (EXEC ran nothing), `discarded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    /// The error's first word (`ERR`, `NOPERM`, `WRONGTYPE`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The reply's type (`simple`, `bulk`, `integer`, `array`, `null`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<&'static str>,
    /// From the request's arrival to its reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// The backend nodes its keys live on (every primary for a command
    /// sent to all of them); empty for a keyless command sent to one node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backends: Option<Vec<String>>,
    /// Shared by the commands of one MULTI ... EXEC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txn: Option<u64>,
    /// Why a client left (disconnect).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// `at` as the records show times: RFC 3339, UTC, microseconds.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_micros(at).to_string()
}

/// The type of a reply as records name it, from its first byte (RESP2 or
/// RESP3).
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

/// `value` as a record shows an argument: text as it is (invalid UTF-8
/// replaced), cut at `max` bytes with the count of bytes left out.
pub fn shown(value: &[u8], max: usize) -> String {
    if value.len() <= max {
        return String::from_utf8_lossy(value).into_owned();
    }
    // Not inside a character: a UTF-8 continuation byte starts 0b10.
    let mut cut = max;
    while cut > 0 && (value[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    format!(
        "{}... ({} more bytes)",
        String::from_utf8_lossy(&value[..cut]),
        value.len() - cut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_line_without_the_fields_that_do_not_apply() {
        let record = Record {
            time: timestamp(SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(1_500_001)),
            event: "connect",
            client: "127.0.0.1:5000".into(),
            ..Record::default()
        };
        let line = serde_json::to_string(&record).unwrap();
        assert_eq!(
            line,
            r#"{"time":"1970-01-01T00:00:01.500001Z","node":"","event":"connect","conn":0,"client":"127.0.0.1:5000","user":"","tenant":""}"#
        );
    }

    #[test]
    fn long_arguments_are_cut_and_counted() {
        assert_eq!(shown(b"abcdef", 6), "abcdef");
        assert_eq!(shown(b"abcdefgh", 3), "abc... (5 more bytes)");
        // Not inside a character.
        assert_eq!(shown("aé".as_bytes(), 2), "a... (2 more bytes)");
        assert_eq!(reply_type(b"$-1\r\n"), "null");
        assert_eq!(reply_type(b"*2\r\n"), "array");
    }
}
