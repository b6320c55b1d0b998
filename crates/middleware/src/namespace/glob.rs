//! Valkey's glob matching (`stringmatchlen`), for filtering keys in the
//! proxy exactly as KEYS and SCAN MATCH filter them in the server.

/// True when `text` matches the glob `pattern` (`*`, `?`, `[...]` with
/// ranges and `^`, and `\` escapes), case-sensitively.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    // Nesting of `*` is bounded by the pattern length; Valkey caps it too.
    match_from(pattern, text, 0)
}

fn match_from(mut pattern: &[u8], mut text: &[u8], depth: usize) -> bool {
    if depth > 1000 {
        return false;
    }
    while let Some(&p) = pattern.first() {
        match p {
            b'*' => {
                while pattern.len() > 1 && pattern[1] == b'*' {
                    pattern = &pattern[1..];
                }
                if pattern.len() == 1 {
                    return true;
                }
                for start in 0..=text.len() {
                    if match_from(&pattern[1..], &text[start..], depth + 1) {
                        return true;
                    }
                }
                return false;
            }
            b'?' => {
                if text.is_empty() {
                    return false;
                }
                text = &text[1..];
            }
            b'[' => {
                let Some((&c, rest_text)) = text.split_first() else {
                    return false;
                };
                let (matched, rest_pattern) = class(&pattern[1..], c);
                if !matched {
                    return false;
                }
                pattern = rest_pattern;
                text = rest_text;
                continue;
            }
            b'\\' if pattern.len() >= 2 => {
                if text.first() != Some(&pattern[1]) {
                    return false;
                }
                pattern = &pattern[1..];
                text = &text[1..];
            }
            _ => {
                if text.first() != Some(&p) {
                    return false;
                }
                text = &text[1..];
            }
        }
        pattern = &pattern[1..];
    }
    text.is_empty()
}

/// Matches `c` against a `[...]` class starting after the `[`; returns
/// whether it matched and the pattern after the closing `]`.
fn class(mut pattern: &[u8], c: u8) -> (bool, &[u8]) {
    let negate = pattern.first() == Some(&b'^');
    if negate {
        pattern = &pattern[1..];
    }
    let mut matched = false;
    loop {
        match pattern {
            [] => break,
            [b']', rest @ ..] => {
                pattern = rest;
                break;
            }
            [b'\\', escaped, rest @ ..] => {
                matched |= *escaped == c;
                pattern = rest;
            }
            [low, b'-', high, rest @ ..] if *high != b']' => {
                let (low, high) = if low <= high { (*low, *high) } else { (*high, *low) };
                matched |= (low..=high).contains(&c);
                pattern = rest;
            }
            [single, rest @ ..] => {
                matched |= *single == c;
                pattern = rest;
            }
        }
    }
    (matched != negate, pattern)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs_as_valkey() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "anything", true),
            ("*", "", true),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hbllo", true),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("user:*:name", "user:12:name", true),
            ("user:*:name", "user:12:mail", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
        ];
        for &(pattern, text, expected) in cases {
            assert_eq!(
                matches(pattern.as_bytes(), text.as_bytes()),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }
}
