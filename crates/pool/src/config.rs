//! Pool configuration.

use std::time::Duration;

/// How the pool connects and how much it queues.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Shared connections per endpoint. Two keep a node busy while one is
    /// between batches; more rarely help because each already pipelines.
    pub connections_per_endpoint: usize,
    /// How long a TCP connect plus handshake may take.
    pub connect_timeout: Duration,
    /// How long a shared connection may owe replies without a byte from
    /// the node. `None` waits for ever. When it passes, the requests it
    /// carried fail with [`crate::Error::Timeout`] and the connection
    /// closes: a FIFO connection cannot skip one reply
    /// ([`crate::watchdog`]; the pool's can change live,
    /// [`crate::Pool::set_request_timeout`]).
    pub request_timeout: Option<Duration>,
    /// TCP keepalive on every backend socket: probes start after this much
    /// idleness and repeat at a third of it, and the kernel drops the
    /// connection after three unanswered ones. `None` leaves the system's.
    pub keepalive: Option<Duration>,
    /// First wait after a failed connect; doubled per failure up to
    /// [`Self::max_backoff`]. Requests in the window fail at once.
    pub min_backoff: Duration,
    /// Longest wait between connect attempts.
    pub max_backoff: Duration,
    /// Dedicated connections kept idle per endpoint once their client is
    /// done with them, so the next transaction or blocking command does not
    /// pay for a connect and handshake. Extra ones are closed.
    pub idle_dedicated_per_endpoint: usize,
    /// Credentials and name sent on every new connection.
    pub handshake: Handshake,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            connections_per_endpoint: 2,
            connect_timeout: Duration::from_secs(2),
            request_timeout: None,
            keepalive: Some(Duration::from_secs(15)),
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            idle_dedicated_per_endpoint: 32,
            handshake: Handshake::default(),
        }
    }
}

/// What every new backend connection sends before carrying requests. The
/// protocol, database and read-only flag come from the [`crate::Endpoint`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handshake {
    /// ACL user for AUTH (`None`: the default user).
    pub username: Option<String>,
    /// Password for AUTH (`None`: no AUTH).
    pub password: Option<String>,
    /// CLIENT SETNAME value, so operators can spot the proxy's connections.
    pub client_name: Option<String>,
}
