//! The pieces records are written with: JSON strings (escaped, cut, made
//! text), numbers, lists, times.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) fn write_key(field: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(b"\":");
}

pub(crate) fn write_number(value: u64, out: &mut Vec<u8>) {
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

pub(crate) fn write_list<'v>(values: impl Iterator<Item = &'v [u8]>, max: usize, out: &mut Vec<u8>) {
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
pub(crate) fn write_text(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    escape(text.as_bytes(), out);
    out.push(b'"');
}

/// Appends `value` as a JSON string: text as it is (invalid UTF-8
/// replaced), cut at `max` bytes (not inside a character) with the count
/// of bytes left out.
pub(crate) fn write_str(value: &[u8], max: usize, out: &mut Vec<u8>) {
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
pub(crate) fn write_time(at: SystemTime, out: &mut Vec<u8>) {
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
