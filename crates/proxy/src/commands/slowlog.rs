//! SLOWLOG GET / LEN / RESET / HELP: the proxy's own slow log
//! ([`crate::slowlog`]), with Valkey's replies and errors.

use resp::{Frame, Request};

use super::text::help;
use crate::context::Shared;
use crate::edge::{unknown_subcommand, wrong_arity};

/// Entries `SLOWLOG GET` returns without a count.
const DEFAULT_COUNT: usize = 10;

/// `SLOWLOG <subcommand>`.
pub fn slowlog(request: &Request, shared: &Shared) -> Frame {
    let Some(sub) = request.arg(1) else {
        return wrong_arity("slowlog");
    };
    let sub = sub.to_ascii_lowercase();
    let log = &shared.slowlog;
    match (&sub[..], request.len()) {
        (b"get", 2) => log.get(Some(DEFAULT_COUNT)),
        (b"get", 3) => match count(request.arg(2).unwrap_or_default()) {
            Some(count) => log.get(count),
            None => Frame::error("ERR count should be greater than or equal to -1"),
        },
        (b"len", 2) => Frame::Integer(log.len() as i64),
        (b"reset", 2) => {
            log.reset();
            Frame::simple("OK")
        }
        (b"help", 2) => help(&[
            "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
            "HELP",
            "    Print this help.",
        ]),
        // Arity -2: the count of arguments is checked by the command.
        (b"get", _) => Frame::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            String::from_utf8_lossy(&request.args()[1])
        )),
        (b"len" | b"reset" | b"help", _) => {
            wrong_arity(&format!("slowlog|{}", String::from_utf8_lossy(&sub)))
        }
        _ => unknown_subcommand("slowlog", &request.args()[1]),
    }
}

/// `SLOWLOG GET`'s count: `None` inside for every entry (-1); `None`
/// outside for anything but an integer of at least -1.
fn count(arg: &[u8]) -> Option<Option<usize>> {
    let count: i64 = std::str::from_utf8(arg).ok()?.parse().ok()?;
    match count {
        -1 => Some(None),
        count => usize::try_from(count).ok().map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_integers_of_at_least_minus_one() {
        assert_eq!(count(b"5"), Some(Some(5)));
        assert_eq!(count(b"0"), Some(Some(0)));
        assert_eq!(count(b"-1"), Some(None));
        assert_eq!(count(b"-2"), None);
        assert_eq!(count(b"x"), None);
    }
}
