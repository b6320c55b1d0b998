//! Valkey's ACLs, checked in the proxy before a command is routed: a
//! [`User`] is set with Valkey's own rule syntax (`on`, `>password`,
//! `+@read -config|set`, `~cart:*`, `%R~log:*`, `&news`, `( ... )`
//! selectors) and [`User::check`] decides as Valkey's
//! `ACLCheckAllUserCommandPerm` does, from the categories, flags and key
//! specs of the command table. Refusals are recorded in an [`AclLog`]
//! that answers `ACL LOG`.
//!
//! # Layout
//! - [`selector`]: one selector's command, key and channel rules.
//! - [`user`]: [`User`], flags, passwords, selectors, `ACL LIST` text.
//! - [`log`]: [`AclLog`], the entries `ACL LOG` shows.

pub mod log;
pub mod selector;
pub mod user;

pub use log::{AclLog, Context, Event, Reason};
pub use user::User;

use router::CommandSpec;

/// Why a command was refused, with the argument that caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// The command (or subcommand) is not allowed.
    Command,
    /// The key at this argument position is not allowed.
    Key(usize),
    /// The channel at this argument position is not allowed.
    Channel(usize),
}

impl Denied {
    /// Valkey's order for picking one refusal among selectors: channel over
    /// key over command, then the later argument.
    fn rank(self) -> (u8, usize) {
        match self {
            Denied::Command => (1, 0),
            Denied::Key(position) => (2, position),
            Denied::Channel(position) => (4, position),
        }
    }

    /// The reason `ACL LOG` shows.
    pub fn reason(self) -> Reason {
        match self {
            Denied::Command => Reason::Command,
            Denied::Key(_) => Reason::Key,
            Denied::Channel(_) => Reason::Channel,
        }
    }

    /// The argument that caused it (0 for the command).
    pub fn position(self) -> usize {
        match self {
            Denied::Command => 0,
            Denied::Key(position) | Denied::Channel(position) => position,
        }
    }

    /// What the client is told after `-NOPERM ` (Valkey's
    /// `getAclErrorMessage`); `verbose` names the key or channel, as
    /// `ACL DRYRUN` does.
    pub fn message(self, user: &str, spec: &CommandSpec, argument: &[u8], verbose: bool) -> String {
        let argument = String::from_utf8_lossy(argument);
        match self {
            Denied::Command => format!(
                "User {user} has no permissions to run the '{}' command",
                spec.name
            ),
            Denied::Key(_) if verbose => {
                format!("User {user} has no permissions to access the '{argument}' key")
            }
            Denied::Key(_) => "No permissions to access a key".into(),
            Denied::Channel(_) if verbose => {
                format!("User {user} has no permissions to access the '{argument}' channel")
            }
            Denied::Channel(_) => "No permissions to access a channel".into(),
        }
    }
}

#[cfg(test)]
mod tests;
