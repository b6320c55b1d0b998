//! The router's errors. The proxy's edge turns each into a Valkey-style
//! error reply.

/// Why a request could not be routed or answered.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The topology is not known yet: no backend has answered.
    #[error("no backend is reachable")]
    NoBackend,
    /// No shard serves the slot (a cluster with missing slots).
    #[error("Hash slot not served")]
    SlotUnassigned(u16),
    /// Keys in several slots reached a layer that cannot split them.
    #[error("Keys in request don't hash to the same slot")]
    CrossSlot,
    /// Keys in several slots, for a command the proxy does not split.
    #[error("{command} with keys in several slots is not supported: {reason}")]
    Unsplittable {
        /// The command, lower case.
        command: String,
        /// Why it is not split.
        reason: &'static str,
    },
    /// A request for several nodes reached a layer that cannot fan out.
    #[error("this command needs the fan-out layer")]
    FanOutRequired,
    /// A keyless command whose cluster behaviour the proxy does not
    /// provide yet (Valkey marks it `request_policy:special`).
    #[error("{0} across a cluster is not supported by valkey-proxy yet")]
    NotSupportedOnCluster(String),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] pool::Error),
    /// A reply the proxy had to read was not valid RESP.
    #[error("invalid reply from a backend: {0}")]
    InvalidReply(String),
    /// MOVED/ASK replies kept pointing elsewhere.
    #[error("too many redirects for slot {slot} (last to {addr})")]
    TooManyRedirects {
        /// The slot.
        slot: u16,
        /// The last target.
        addr: String,
    },
}

impl Error {
    /// True when the request certainly did not run anywhere: it never
    /// reached a node, or nodes only redirected it. False when it may
    /// have run (sent, then the connection broke or no reply came).
    pub fn never_ran(&self) -> bool {
        match self {
            Error::Backend(error) => error.never_sent(),
            Error::InvalidReply(_) => false,
            _ => true,
        }
    }
}
