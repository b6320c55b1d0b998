//! Integer parsing with Valkey's rules (`string2ll`): an optional `-`, then
//! digits with no leading zero, no `+`, no spaces, and no overflow.

/// Parses `s` as Valkey's `string2ll` does. Returns `None` for anything that
/// function rejects.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    // Accumulate as a negative number so that i64::MIN parses.
    let mut value: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(b - b'0'))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

/// Parses a length or count in a server reply: like [`parse_i64`], but a reply
/// is produced by a server, so `-1` (null) is the only negative value allowed.
pub fn parse_reply_len(s: &[u8]) -> Option<i64> {
    match parse_i64(s)? {
        n if n >= -1 => Some(n),
        _ => None,
    }
}

/// The common case of a header, read in one pass: `kind` (`*` or `$`), a
/// number of up to 9 digits without a leading zero (or just `0`) within
/// `max`, and the CRLF, all in `rest`. Returns the number and the header's
/// size; `None` leaves anything else (incomplete, malformed, negative,
/// huge) to the full path, which gives Valkey's errors.
// Inlined: both decoders call it for every header (four times for a GET),
// and the call was most of its cost.
#[inline(always)]
pub(crate) fn plain_header(rest: &[u8], kind: u8, max: i64) -> Option<(usize, usize)> {
    let (&first, digits) = rest.split_first()?;
    if first != kind {
        return None;
    }
    // One or two digits, as almost every count and length has, read without
    // the loop below (same rules: the LF must be there, its value is not
    // checked, as Valkey does not check it either).
    let digit = |b: u8| b.is_ascii_digit().then(|| usize::from(b - b'0'));
    let short = match *digits {
        [a, b'\r', _, ..] => digit(a).map(|value| (value, 4)),
        [a, b, b'\r', _, ..] if a != b'0' => digit(a).zip(digit(b)).map(|(a, b)| (a * 10 + b, 5)),
        _ => None,
    };
    if let Some((value, size)) = short {
        return (value as i64 <= max).then_some((value, size));
    }
    let mut value: usize = 0;
    for (n, &b) in digits.iter().enumerate().take(10) {
        if b == b'\r' {
            let plain = n > 0 && n + 1 < digits.len() && (n == 1 || digits[0] != b'0') && value as i64 <= max;
            // `kind`, the digits, CR and LF.
            return plain.then_some((value, n + 3));
        }
        let digit = b.wrapping_sub(b'0');
        if digit > 9 || n == 9 {
            return None;
        }
        value = value * 10 + usize::from(digit);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_valkey_accepts() {
        for (text, value) in [
            (&b"0"[..], 0),
            (b"1", 1),
            (b"-1", -1),
            (b"9223372036854775807", i64::MAX),
            (b"-9223372036854775808", i64::MIN),
        ] {
            assert_eq!(parse_i64(text), Some(value), "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn rejects_what_valkey_rejects() {
        for text in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"blabla",
        ] {
            assert_eq!(parse_i64(text), None, "{}", String::from_utf8_lossy(text));
        }
    }

    /// The header as `parse_i64` reads it: what `plain_header` must agree
    /// with wherever it answers.
    fn reference(rest: &[u8], kind: u8, max: i64) -> Option<(usize, usize)> {
        let cr = rest.iter().position(|&b| b == b'\r')?;
        let plain = rest[0] == kind && cr + 1 < rest.len() && cr <= 10 && !rest[1..cr].starts_with(b"-");
        let value = parse_i64(&rest[1..cr]).filter(|&v| plain && (0..=max).contains(&v))?;
        Some((value as usize, cr + 2))
    }

    #[test]
    fn plain_headers_agree_with_the_full_parse() {
        let alphabet = [b'0', b'1', b'5', b'9', b'\r', b'\n', b'-', b'a'];
        let mut checked = 0;
        for len in 0..=5 {
            for mut n in 0..alphabet.len().pow(len as u32) {
                let mut header = vec![b'$'];
                for _ in 0..len {
                    header.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                for max in [0, 9, 15, 99, 512] {
                    let got = plain_header(&header, b'$', max);
                    // `plain_header` may leave a header to the full path
                    // (None), but what it answers must be right.
                    if let Some(answer) = got {
                        assert_eq!(
                            Some(answer),
                            reference(&header, b'$', max),
                            "{:?} max {max}",
                            String::from_utf8_lossy(&header)
                        );
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 100_000);
        assert_eq!(plain_header(b"$3\r\nGET", b'$', 512), Some((3, 4)));
        assert_eq!(plain_header(b"$16\r\n", b'$', 512), Some((16, 5)));
        assert_eq!(plain_header(b"*123\r\n", b'*', 512), Some((123, 6)));
        assert_eq!(plain_header(b"$05\r\n", b'$', 512), None);
        assert_eq!(plain_header(b"$16\r\n", b'$', 15), None);
        assert_eq!(plain_header(b"$3\r", b'$', 512), None, "the LF must have arrived");
    }
}
