//! Discovery errors.

/// Why the topology could not be learned.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A node could not be asked.
    #[error("cannot query {addr}: {reason}")]
    Unreachable {
        /// Node address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// A node answered with an error.
    #[error("{addr} answered {command} with: {reply}")]
    Refused {
        /// Node address.
        addr: String,
        /// The command that was refused.
        command: String,
        /// The error reply.
        reply: String,
    },
    /// A node's reply did not have the expected shape.
    #[error("unexpected reply to {command} from {addr}: {detail}")]
    Unexpected {
        /// Node address.
        addr: String,
        /// The command.
        command: String,
        /// What was wrong.
        detail: String,
    },
    /// No seed node answered.
    #[error("no seed node answered: {0}")]
    NoSeed(String),
    /// The configured mode does not match what the backend is.
    #[error("configured mode {configured} but {addr} is {actual}")]
    ModeMismatch {
        /// What the configuration says.
        configured: String,
        /// What the node says.
        actual: String,
        /// Node address.
        addr: String,
    },
}
