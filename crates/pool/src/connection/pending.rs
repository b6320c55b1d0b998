//! [`PendingReply`]: the future a caller holds for its reply, and what
//! dropping it before the reply comes does.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;

use super::Connection;
use crate::{lock, Error};

/// A reply on its way; a future. Dropping it abandons the reply (the
/// connection discards it when it arrives).
#[derive(Debug)]
pub struct PendingReply {
    /// The connection the request went to; `None` when it could not even
    /// be enqueued. Kept after the outcome was returned, so that
    /// [`PendingReply::addr`] still names the node that answered.
    pub(super) connection: Option<Connection>,
    pub(super) state: Pending,
}

#[derive(Debug)]
pub(super) enum Pending {
    /// The request could not even be enqueued.
    Failed(Option<Box<Error>>),
    /// The request is enqueued or written; its reply will be in `slot`.
    Waiting {
        slot: u32,
        /// Keeps a dedicated connection open until its reply is in.
        dedicated: Option<Box<crate::Dedicated>>,
    },
    /// The outcome was returned.
    Done,
}

impl Drop for PendingReply {
    fn drop(&mut self) {
        if let (Pending::Waiting { slot, .. }, Some(connection)) = (&self.state, &self.connection) {
            lock(&connection.inner.shared.exchange).abandon(*slot);
        }
    }
}

impl PendingReply {
    /// A reply that is already known to be this error.
    pub fn failed(error: Error) -> PendingReply {
        PendingReply {
            connection: None,
            state: Pending::Failed(Some(Box::new(error))),
        }
    }

    /// Keeps `dedicated` open until this reply arrives or is abandoned.
    pub(crate) fn holding(mut self, dedicated: crate::Dedicated) -> Self {
        if let Pending::Waiting { dedicated: slot, .. } = &mut self.state {
            *slot = Some(Box::new(dedicated));
        }
        self
    }

    /// The address of the node the request went to; `None` when it could
    /// not be enqueued. Still known after the reply was returned (a
    /// redirect's `:port` is read relative to it).
    pub fn addr(&self) -> Option<&Arc<str>> {
        self.connection
            .as_ref()
            .map(|connection| &connection.inner.shared.endpoint.addr)
    }

    /// Waits for the reply (the same as awaiting `self`).
    ///
    /// # Errors
    /// As the future's output.
    pub async fn wait(self) -> Result<Bytes, Error> {
        self.await
    }
}

impl Future for PendingReply {
    /// The reply, or why there is none (the request timeout is the
    /// connection's watchdog's: [`crate::watchdog`]).
    type Output = Result<Bytes, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let outcome = match (&mut this.state, &this.connection) {
            (Pending::Failed(error), _) => error.take().map(|error| Err(*error)),
            (Pending::Waiting { slot, dedicated, .. }, Some(connection)) => {
                let shared = &connection.inner.shared;
                if let Poll::Ready(outcome) = lock(&shared.exchange).poll_reply(*slot, cx) {
                    let outcome = outcome.unwrap_or_else(|| Err(connection.lost(true)));
                    // A dedicated connection whose one command answered is
                    // clean again: back to the pool. On an error it closes.
                    if let (Ok(_), Some(dedicated)) = (&outcome, dedicated.take()) {
                        dedicated.release();
                    }
                    this.state = Pending::Done;
                    return Poll::Ready(outcome);
                }
                return Poll::Pending;
            }
            (Pending::Waiting { .. } | Pending::Done, _) => None,
        };
        this.state = Pending::Done;
        Poll::Ready(outcome.unwrap_or_else(|| {
            Err(Error::Protocol {
                addr: "".into(),
                reason: "reply polled after it was returned".into(),
            })
        }))
    }
}
