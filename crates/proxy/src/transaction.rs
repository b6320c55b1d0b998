//! A client's transaction state: the MULTI queue and the WATCH
//! connection. MULTI, EXEC, DISCARD, WATCH and UNWATCH, which change it,
//! are [`crate::commands::transaction`].

use std::sync::Arc;

use bytes::Bytes;
use pool::Dedicated;
use resp::Request;
use router::command::{CommandSpec, ResponsePolicy};

/// UNWATCH, as sent to a backend.
pub(crate) const UNWATCH: &[u8] = b"*1\r\n$7\r\nUNWATCH\r\n";

/// A client's MULTI queue and WATCH connection.
#[derive(Debug, Default)]
pub struct Transaction {
    /// Set between MULTI and EXEC / DISCARD.
    pub(crate) queue: Option<Queue>,
    /// Set while keys are watched.
    pub(crate) watch: Option<Watch>,
}

/// The dedicated connection holding a client's WATCHes.
#[derive(Debug)]
pub(crate) struct Watch {
    pub(crate) connection: Dedicated,
    pub(crate) slot: Option<u16>,
}

impl Transaction {
    /// True between MULTI and EXEC / DISCARD.
    pub fn in_multi(&self) -> bool {
        self.queue.is_some()
    }

    /// Commands queued since MULTI, or `None` outside a transaction.
    pub fn queued(&self) -> Option<u32> {
        self.queue.as_ref().map(|q| q.commands.len() as u32)
    }

    /// Bytes of the commands queued since MULTI.
    pub fn queued_bytes(&self) -> usize {
        self.queue.as_ref().map_or(0, |q| q.bytes)
    }

    /// True while keys are watched (a dedicated connection is held).
    pub fn is_watching(&self) -> bool {
        self.watch.is_some()
    }

    /// Marks the transaction as failed: EXEC will answer EXECABORT (a
    /// command was refused while queueing).
    pub fn mark_failed(&mut self) {
        if let Some(queue) = self.queue.as_mut() {
            queue.dirty = true;
        }
    }

    /// Forgets the transaction and the watch (RESET): the watch connection
    /// is unwatched and returned to the pool in the background.
    pub fn reset(&mut self) {
        self.queue = None;
        if let Some(watch) = self.watch.take() {
            unwatch_later(watch.connection);
        }
    }

    /// The slot the watch and the queue agree on so far.
    pub(crate) fn pinned_slot(&self) -> Option<u16> {
        self.queue
            .as_ref()
            .and_then(|q| q.slot)
            .or_else(|| self.watch.as_ref().and_then(|w| w.slot))
    }
}

/// Commands queued since MULTI.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// Every queued command, in the client's order.
    pub(crate) commands: Vec<Queued>,
    /// Their bytes, together.
    pub(crate) bytes: usize,
    /// An error while queueing: EXEC answers EXECABORT.
    pub(crate) dirty: bool,
    /// The slot of the first keyed command (cluster only): keyless
    /// commands run in its block.
    pub(crate) slot: Option<u16>,
    /// Keyed commands in more than one slot so far.
    pub(crate) spans_slots: bool,
    /// A command that runs on every node so far.
    pub(crate) reaches_every: bool,
}

/// One queued command.
#[derive(Debug)]
pub(crate) struct Queued {
    /// The request as the backend must get it.
    pub(crate) request: Request,
    /// The request as the client sent it (what MONITOR shows).
    pub(crate) client: Request,
    /// The nodes it runs on.
    pub(crate) reach: Reach,
    /// Its spec, for merging replies from several nodes.
    pub(crate) spec: Arc<CommandSpec>,
    /// The slot of its keys (cluster only).
    pub(crate) slot: Option<u16>,
}

/// The nodes a queued command runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// The transaction's node: its keys' primary, or (for a keyless
    /// command that any node answers) the first primary.
    Home,
    /// Every primary (`replicas` false) or every node, as outside a
    /// transaction; the replies merged by `policy`.
    Every {
        /// Replicas too.
        replicas: bool,
        /// How the nodes' replies combine.
        policy: ResponsePolicy,
    },
}

/// Clears a watch in the background and returns its connection to the pool.
pub(crate) fn unwatch_later(connection: Dedicated) {
    tokio::spawn(async move {
        if connection.send(&Bytes::from_static(UNWATCH), 0).await.is_ok() {
            connection.release();
        }
    });
}
