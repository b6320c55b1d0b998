//! Valkey's glob matching (`stringmatchlen`), for filtering keys in the
//! proxy exactly as KEYS and SCAN MATCH filter them in the server.
//!
//! A port of the server's matcher, quirks included (a range's bounds
//! compare as signed bytes, an unclosed `[` class runs to the end of the
//! pattern), and its two guards against abusive patterns: once the rest of
//! a pattern after a `*` matched nowhere in the rest of the text, no
//! earlier `*` tries a longer match (so a pattern such as
//! `a*a*a*...*b` fails in time linear in the text for each `*`, not
//! exponential), and a pattern nesting more than 1,000 `*` matches nothing.

/// Deepest nesting of `*` matched before giving up, as in Valkey.
const MAX_NESTING: usize = 1000;

/// True when `text` matches the glob `pattern` (`*`, `?`, `[...]` with
/// ranges and `^`, and `\` escapes), case-sensitively. A lone `*` matches
/// every text, the empty one too: Valkey's callers (KEYS, SCAN, ACL
/// patterns) take it as "everything" before matching.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    if pattern == b"*" {
        return true;
    }
    let mut no_longer_matches = false;
    match_from(pattern, text, &mut no_longer_matches, 0)
}

/// `stringmatchlen_impl`: matches `text` against `pattern`, setting
/// `no_longer_matches` once a `*` found no place for the rest of its
/// pattern (every earlier `*` then stops trying).
fn match_from(pattern: &[u8], text: &[u8], no_longer_matches: &mut bool, nesting: usize) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    // The byte at `i`, or the terminating NUL the C code reads past the end.
    let at = |i: usize| pattern.get(i).copied().unwrap_or(0);
    let (mut p, mut s) = (0, 0);
    while p < pattern.len() && s < text.len() {
        match pattern[p] {
            b'*' => {
                while p < pattern.len() && at(p + 1) == b'*' {
                    p += 1;
                }
                if pattern.len() - p == 1 {
                    return true;
                }
                while s < text.len() {
                    if match_from(&pattern[p + 1..], &text[s..], no_longer_matches, nesting + 1) {
                        return true;
                    }
                    if *no_longer_matches {
                        return false;
                    }
                    s += 1;
                }
                *no_longer_matches = true;
                return false;
            }
            b'?' => s += 1,
            b'[' => {
                let (matched, end) = class(pattern, p + 1, text[s]);
                if !matched {
                    return false;
                }
                p = end;
                s += 1;
            }
            b'\\' => {
                if pattern.len() - p >= 2 {
                    p += 1;
                }
                if pattern[p] != text[s] {
                    return false;
                }
                s += 1;
            }
            other => {
                if other != text[s] {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == text.len() {
            while at(p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    p == pattern.len() && s == text.len()
}

/// Matches `c` against the `[...]` class whose body starts at `p`;
/// returns whether it matched and the position of its closing `]` (or of
/// the pattern's last byte, when the class is not closed).
fn class(pattern: &[u8], mut p: usize, c: u8) -> (bool, usize) {
    let at = |i: usize| pattern.get(i).copied().unwrap_or(0);
    let negate = at(p) == b'^';
    if negate {
        p += 1;
    }
    let mut matched = false;
    loop {
        let left = pattern.len().saturating_sub(p);
        if at(p) == b'\\' && left >= 2 {
            p += 1;
            matched |= pattern[p] == c;
        } else if at(p) == b']' {
            break;
        } else if left == 0 {
            p -= 1;
            break;
        } else if left >= 3 && pattern[p + 1] == b'-' {
            // `char` is signed in the server: bytes past 0x7f are negative.
            let (low, high) = (pattern[p] as i8, pattern[p + 2] as i8);
            let (low, high) = if low <= high { (low, high) } else { (high, low) };
            p += 2;
            matched |= (low..=high).contains(&(c as i8));
        } else {
            matched |= pattern[p] == c;
        }
        p += 1;
    }
    (matched != negate, p)
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
            ("a*", "a", true),
            ("**", "", false),
            ("a**", "a", true),
            // The server's quirks: `]` closes a range only after it.
            ("[a-]x", "]x", false),
            ("[a-]]", "_", true),
            ("[a-]]", "b", false),
            ("[^", "z", true),
            ("[", "[", false),
            ("\\", "\\", true),
        ];
        for &(pattern, text, expected) in cases {
            assert_eq!(
                matches(pattern.as_bytes(), text.as_bytes()),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }

    #[test]
    fn bytes_past_ascii_compare_as_the_server_compares_them() {
        // Signed: 0xff is -1, below b'a', so [a-\xff] spans -1..=b'a'.
        assert!(matches(b"[a-\xff]", b"\xff"));
        assert!(!matches(b"[a-\xff]", b"\x80"));
        assert!(matches(b"[a-\xff]", b"A"));
        assert!(!matches(b"[a-\xff]", b"b"));
    }

    #[test]
    fn abusive_patterns_end_at_once() {
        // Exponential for a matcher without the server's early stop: 2^20
        // ways to place the stars (the test would run for minutes).
        let text = [b'a'; 40];
        let pattern = format!("{}b", "a*".repeat(20));
        assert!(!matches(pattern.as_bytes(), &text));
        let longer = [b'a'; 100_000];
        assert!(!matches(pattern.as_bytes(), &longer));
        assert!(matches(b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a", &longer));
    }

    #[test]
    fn more_than_a_thousand_nested_stars_match_nothing() {
        let deep = format!("{}b", "a*".repeat(1002));
        let text = [b'a'; 1003];
        let mut matching = text.to_vec();
        matching.push(b'b');
        assert!(!matches(deep.as_bytes(), &matching));
        let shallow = format!("{}b", "a*".repeat(999));
        assert!(matches(shallow.as_bytes(), &matching));
    }
}
