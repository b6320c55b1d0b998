//! [`LastConnection`]: the shared backend connection a router clone used
//! last. A session's own clone of the stack sends most requests to the
//! same node and connection (its affinity), so keeping it saves the pool's
//! map lookup and lock per request.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use pool::{Connection, Endpoint, PendingReply, Pool};

use crate::command::Flags;
use crate::Command;

/// The shared connection a router clone used last, with its endpoint.
#[derive(Debug, Default)]
pub(crate) struct LastConnection(Option<(Endpoint, Connection)>);

impl LastConnection {
    /// Enqueues one attempt of `command` on `target`.
    pub(crate) fn send(
        &mut self,
        pool: &Pool,
        command: &Command,
        target: &Arc<str>,
        asking: bool,
    ) -> PendingReply {
        let raw = command.request.raw();
        if command
            .spec
            .as_ref()
            .is_some_and(|s| s.flags.contains(Flags::BLOCKING))
        {
            // A blocking command would stall every request queued behind it
            // on a shared connection: it gets a connection of its own, closed
            // as soon as it answers or the client goes away.
            return pool.send_dedicated(&endpoint(command, target), raw);
        }
        let connection = match self.shared_connection(pool, command, target) {
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
    ) -> Result<&Connection, pool::Error> {
        // The address usually is the very `Arc` of the last request (both
        // come from the topology): compare pointers before contents.
        let same = |last: &Endpoint| {
            (Arc::ptr_eq(&last.addr, target) || last.addr == *target)
                && last.protocol == command.protocol
                && last.db == command.db
                && !last.readonly
        };
        let reusable = matches!(&self.0, Some((last, connection)) if same(last) && connection.is_alive());
        if !reusable {
            let endpoint = endpoint(command, target);
            let connection = pool.shared_for(&endpoint, command.affinity)?;
            self.0 = Some((endpoint, connection));
        }
        match &self.0 {
            Some((_, connection)) => Ok(connection),
            None => Err(pool::Error::Unreachable {
                addr: "".into(),
                last: String::new(),
                retry_in: Duration::ZERO,
            }),
        }
    }
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
