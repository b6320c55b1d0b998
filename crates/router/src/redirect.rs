//! Reading the replies that ask the proxy to try again elsewhere or later:
//! MOVED, ASK, TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN and READONLY.
//! Only the router looks at these; every other error reply is data.

/// What a redirect-class error reply asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// The slot lives on `addr` now: update the map, retry there.
    Moved {
        /// The slot.
        slot: u16,
        /// `host:port` of the new owner.
        addr: String,
    },
    /// The slot is migrating: retry once on `addr`, preceded by ASKING.
    Ask {
        /// The slot.
        slot: u16,
        /// `host:port` of the target.
        addr: String,
    },
    /// The command was not run; try again shortly (TRYAGAIN, CLUSTERDOWN,
    /// LOADING, MASTERDOWN).
    Wait,
    /// A write reached a replica (the primary changed): refresh, retry.
    ReadOnly,
}

/// Classifies a raw reply. `from` is the node that sent it, whose host is
/// used when the reply gives only `:port`.
#[inline]
pub fn classify(reply: &[u8], from: &str) -> Option<Redirect> {
    // Every reply passes here: all but errors are told apart by their
    // first byte, without a call.
    match reply.first() {
        Some(b'-') => classify_error(reply, from),
        _ => None,
    }
}

/// [`classify`] for an error reply.
fn classify_error(reply: &[u8], from: &str) -> Option<Redirect> {
    let text = reply.strip_prefix(b"-")?;
    let word_end = text
        .iter()
        .position(|&b| b == b' ' || b == b'\r')
        .unwrap_or(text.len());
    match &text[..word_end] {
        b"MOVED" | b"ASK" => {
            let line = std::str::from_utf8(&text[..text.len().saturating_sub(2)]).ok()?;
            let mut parts = line.split(' ');
            let kind = parts.next()?;
            let slot: u16 = parts.next()?.parse().ok()?;
            let target = parts.next()?;
            let addr = match target.strip_prefix(':') {
                Some(port) => format!("{}:{port}", from.rsplit_once(':').map_or(from, |(host, _)| host)),
                None => target.to_string(),
            };
            Some(if kind == "MOVED" {
                Redirect::Moved { slot, addr }
            } else {
                Redirect::Ask { slot, addr }
            })
        }
        b"TRYAGAIN" | b"CLUSTERDOWN" | b"LOADING" | b"MASTERDOWN" => Some(Redirect::Wait),
        b"READONLY" => Some(Redirect::ReadOnly),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(
            classify(b"-MOVED 3999 127.0.0.1:6381\r\n", "x:1"),
            Some(Redirect::Moved {
                slot: 3999,
                addr: "127.0.0.1:6381".into()
            })
        );
        assert_eq!(
            classify(b"-ASK 1 :7000\r\n", "10.0.0.9:7001"),
            Some(Redirect::Ask {
                slot: 1,
                addr: "10.0.0.9:7000".into()
            })
        );
        assert_eq!(
            classify(
                b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
                "x:1"
            ),
            Some(Redirect::Wait)
        );
        assert_eq!(
            classify(b"-LOADING Valkey is loading the dataset in memory\r\n", "x:1"),
            Some(Redirect::Wait)
        );
        assert_eq!(
            classify(
                b"-READONLY You can't write against a read only replica.\r\n",
                "x:1"
            ),
            Some(Redirect::ReadOnly)
        );
        assert_eq!(classify(b"-ERR wrong type\r\n", "x:1"), None);
        assert_eq!(classify(b"+OK\r\n", "x:1"), None);
    }
}
