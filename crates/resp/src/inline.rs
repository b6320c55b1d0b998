//! Splitting an inline command into arguments exactly as Valkey's
//! `sdssplitargs` does: blanks separate arguments, `"..."` understands
//! `\n \r \t \b \a \xHH` escapes, `'...'` understands `\'`, and a closing quote
//! must be followed by a blank or the end of the line.

use bytes::Bytes;

use crate::Error;

/// Splits one inline line (without its line end) into arguments.
///
/// # Errors
/// [`Error::UnbalancedQuotes`] for an unterminated quote or a closing quote
/// followed by something other than a blank.
pub fn split_args(line: &[u8]) -> Result<Vec<Bytes>, Error> {
    // Valkey works on a C string: a NUL byte ends the line.
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let at = |i: usize| line.get(i).copied();
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while at(p).is_some_and(is_space) {
            p += 1;
        }
        if p >= line.len() {
            return Ok(args);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let c = at(p);
            if in_double {
                match c {
                    None => return Err(Error::UnbalancedQuotes),
                    Some(b'\\') if at(p + 1) == Some(b'x') && hex_pair(at(p + 2), at(p + 3)).is_some() => {
                        current.push(hex_pair(at(p + 2), at(p + 3)).unwrap_or_default());
                        p += 3;
                    }
                    Some(b'\\') if at(p + 1).is_some() => {
                        p += 1;
                        current.push(match at(p).unwrap_or_default() {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if at(p + 1).is_some_and(|n| !is_space(n)) {
                            return Err(Error::UnbalancedQuotes);
                        }
                        p += 1;
                        break;
                    }
                    Some(other) => current.push(other),
                }
            } else if in_single {
                match c {
                    None => return Err(Error::UnbalancedQuotes),
                    Some(b'\\') if at(p + 1) == Some(b'\'') => {
                        p += 1;
                        current.push(b'\'');
                    }
                    Some(b'\'') => {
                        if at(p + 1).is_some_and(|n| !is_space(n)) {
                            return Err(Error::UnbalancedQuotes);
                        }
                        p += 1;
                        break;
                    }
                    Some(other) => current.push(other),
                }
            } else {
                match c {
                    None | Some(b' ' | b'\n' | b'\r' | b'\t') => break,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(other) => current.push(other),
                }
            }
            p += 1;
        }
        args.push(Bytes::from(current));
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_pair(high: Option<u8>, low: Option<u8>) -> Option<u8> {
    let digit = |b: u8| char::from(b).to_digit(16);
    Some((digit(high?)? * 16 + digit(low?)?) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Result<Vec<String>, Error> {
        split_args(s.as_bytes()).map(|v| {
            v.iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
    }

    #[test]
    fn splits_like_sdssplitargs() {
        assert_eq!(split("set key value").unwrap(), ["set", "key", "value"]);
        assert_eq!(split("  ping   ").unwrap(), ["ping"]);
        assert_eq!(split(r#"set "a b" 'c d'"#).unwrap(), ["set", "a b", "c d"]);
        assert_eq!(
            split(r#"echo "\x41\n" 'it\'s'"#).unwrap(),
            ["echo", "A\n", "it's"]
        );
        assert_eq!(split(r#"echo """#).unwrap(), ["echo", ""]);
        assert!(split("").unwrap().is_empty());
    }

    #[test]
    fn rejects_unbalanced_quotes() {
        for bad in [
            r#"set """test-key""" test-value"#,
            r#"echo "abc"#,
            "echo 'abc",
            r#"echo "a"b"#,
        ] {
            assert!(matches!(split(bad), Err(Error::UnbalancedQuotes)), "{bad}");
        }
    }
}
