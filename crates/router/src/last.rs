//! [`LastConnection`]: the shared backend connection a router clone used
//! last. A session's own clone of the stack sends most requests to the
//! same node and connection (its affinity), so keeping it saves the pool's
//! map lookup and lock per request; remembering which shard of which
//! topology it was chosen for saves working the target out again.

use std::sync::Arc;

use bytes::BytesMut;
use pool::{Connection, Endpoint, PendingReply, Pool};

use crate::Command;

/// A shard of one topology, as a router clone's topology cache stamps it
/// ([`topology::TopologyCache::get_stamped`]): while both match, the
/// shard's primary is the same node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ShardKey {
    pub(crate) stamp: u64,
    pub(crate) shard: u32,
}

/// The shared connection a router clone used last.
#[derive(Debug, Default)]
pub(crate) struct LastConnection(Option<Last>);

#[derive(Debug)]
struct Last {
    endpoint: Endpoint,
    connection: Connection,
    /// The shard the connection's node was chosen as the primary of, if
    /// it was.
    shard: Option<ShardKey>,
}

impl LastConnection {
    /// Enqueues `command` on the connection used last if it was chosen
    /// for the primary of `shard` in the same protocol and database, and
    /// is alive; `None` when the target must be worked out
    /// ([`LastConnection::send`]).
    pub(crate) fn resend(&mut self, command: &Command, shard: ShardKey) -> Option<PendingReply> {
        let last = self.0.as_ref()?;
        let same = last.shard == Some(shard) && last.serves(command) && !needs_own_connection(command);
        same.then(|| last.connection.send(command.request.raw(), 0))
    }

    /// Enqueues one attempt of `command` on `target`; `shard` says which
    /// shard's primary `target` is, when it is one.
    pub(crate) fn send(
        &mut self,
        pool: &Pool,
        command: &Command,
        target: &Arc<str>,
        asking: bool,
        shard: Option<ShardKey>,
    ) -> PendingReply {
        let raw = command.request.raw();
        if needs_own_connection(command) {
            // A blocking command would stall every request queued behind it
            // on a shared connection, and SCRIPT KILL may be queued behind the
            // script it stops: each gets a connection of its own, closed as
            // soon as it answers or the client goes away.
            return pool.send_blocking(&endpoint(command, target), raw, command.affinity);
        }
        let connection = match self.shared_connection(pool, command, target, shard) {
            Ok(connection) => connection,
            Err(error) => return PendingReply::failed(error),
        };
        if asking {
            let mut bytes = BytesMut::with_capacity(raw.len() + 20);
            bytes.extend_from_slice(b"*1\r\n$6\r\nASKING\r\n");
            bytes.extend_from_slice(raw);
            connection.send(&bytes.freeze(), 1)
        } else {
            connection.send(raw, 0)
        }
    }

    /// The shared connection to `target` for this client: the one used
    /// last if it is still the same and alive, else the pool's.
    fn shared_connection(
        &mut self,
        pool: &Pool,
        command: &Command,
        target: &Arc<str>,
        shard: Option<ShardKey>,
    ) -> Result<&Connection, pool::Error> {
        // The address usually is the very `Arc` of the last request (both
        // come from the topology): compare pointers before contents.
        let last = match self.0.take() {
            Some(last)
                if (Arc::ptr_eq(&last.endpoint.addr, target) || last.endpoint.addr == *target)
                    && last.serves(command) =>
            {
                self.0.insert(last)
            }
            _ => {
                let endpoint = endpoint(command, target);
                let connection = pool.shared_for(&endpoint, command.affinity)?;
                self.0.insert(Last {
                    endpoint,
                    connection,
                    shard: None,
                })
            }
        };
        last.shard = shard;
        Ok(&last.connection)
    }
}

impl Last {
    /// True when this connection can carry `command` (same protocol and
    /// database) and is alive.
    fn serves(&self, command: &Command) -> bool {
        self.endpoint.protocol == command.protocol
            && self.endpoint.db == command.db
            && self.connection.is_alive()
    }
}

/// True for a command that travels on a connection of its own
/// ([`crate::CommandSpec::needs_own_connection`]).
fn needs_own_connection(command: &Command) -> bool {
    command
        .spec
        .as_ref()
        .is_some_and(|s| s.needs_own_connection(command.request.args()))
}

/// The endpoint `command` needs on `target`.
fn endpoint(command: &Command, target: &Arc<str>) -> Endpoint {
    Endpoint {
        addr: target.clone(),
        protocol: command.protocol,
        db: command.db,
        readonly: false,
    }
}
