//! The edge: every Rust error that reaches a client becomes a Valkey-style
//! error reply here, and nowhere else.

use resp::{Frame, Request};
use router::Error;

/// The error reply for a failed request.
pub fn reply_for(error: &Error) -> Frame {
    let text = match error {
        Error::NoBackend => "ERR proxy: no backend is reachable yet".to_string(),
        Error::SlotUnassigned(_) => "CLUSTERDOWN Hash slot not served".to_string(),
        Error::CrossSlot => "CROSSSLOT Keys in request don't hash to the same slot".to_string(),
        Error::FanOutRequired => "ERR proxy: this command needs the fan-out layer in the stack".to_string(),
        Error::Backend(error) if error.never_sent() => format!("ERR proxy: backend unavailable: {error}"),
        Error::Backend(error) => format!("ERR proxy: backend failed, the command may have run: {error}"),
        Error::NotSupportedOnCluster(command) => {
            format!(
                "ERR proxy: {} across a cluster is not supported yet",
                command.to_ascii_uppercase()
            )
        }
        Error::Unsplittable { command, reason } => format!(
            "ERR proxy: {} with keys in several slots is not supported: {reason}",
            command.to_ascii_uppercase()
        ),
        Error::InvalidReply(reason) => format!("ERR proxy: invalid reply from a backend: {reason}"),
        Error::TooManyRedirects { slot, addr } => {
            format!("TRYAGAIN proxy: slot {slot} is still moving (last redirect to {addr}); retry")
        }
        other => format!("ERR proxy: {other}"),
    };
    Frame::error(text)
}

/// Valkey's reply for a wrong argument count.
pub fn wrong_arity(command: &str) -> Frame {
    Frame::error(format!(
        "ERR wrong number of arguments for '{}' command",
        command.to_ascii_lowercase()
    ))
}

/// Valkey's reply for an unknown subcommand.
pub fn unknown_subcommand(command: &str, sub: &[u8]) -> Frame {
    Frame::error(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        command.to_ascii_uppercase()
    ))
}

/// Valkey's reply for an argument that must be an integer.
pub fn not_an_integer() -> Frame {
    Frame::error("ERR value is not an integer or out of range")
}

/// The reply for a stateful command the proxy does not support yet, with
/// the reason instead of a silent misbehaviour.
pub fn not_supported(command: &str) -> Frame {
    Frame::error(format!(
        "ERR proxy: {} is not supported by valkey-proxy yet (it needs a dedicated backend connection)",
        command.to_ascii_uppercase()
    ))
}

/// Valkey's error for a command it does not know.
pub fn unknown_command(request: &Request) -> Frame {
    let mut args = String::new();
    for arg in request.args().iter().skip(1) {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        let text = String::from_utf8_lossy(arg);
        let text: String = text.chars().take(room).collect();
        args.push_str(&format!("'{text}' "));
    }
    let name: String = String::from_utf8_lossy(request.name())
        .chars()
        .take(128)
        .collect();
    Frame::error(format!(
        "ERR unknown command '{name}', with args beginning with: {args}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(frame: Frame) -> String {
        String::from_utf8_lossy(frame.as_bytes().unwrap()).into_owned()
    }

    #[test]
    fn texts() {
        assert_eq!(
            text(reply_for(&Error::CrossSlot)),
            "CROSSSLOT Keys in request don't hash to the same slot"
        );
        assert_eq!(
            text(reply_for(&Error::SlotUnassigned(7))),
            "CLUSTERDOWN Hash slot not served"
        );
        let lost = pool::Error::ConnectionLost {
            addr: "127.0.0.1:1".into(),
            sent: false,
        };
        assert_eq!(
            text(reply_for(&Error::Backend(lost))),
            "ERR proxy: backend unavailable: connection to 127.0.0.1:1 lost"
        );
        assert_eq!(
            text(wrong_arity("PING")),
            "ERR wrong number of arguments for 'ping' command"
        );
        assert_eq!(
            text(unknown_subcommand("client", b"foo")),
            "ERR unknown subcommand 'foo'. Try CLIENT HELP."
        );
    }
}
