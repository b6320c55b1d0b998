//! [`Exchange`]: what a connection's callers and its tasks hand each other,
//! behind one lock: the requests waiting for the writer (an [`Outbox`],
//! copied in as they are queued), and a slot for each reply a caller waits
//! for.
//!
//! This replaces a channel plus a oneshot per request. A request costs one
//! lock to enqueue it and take a slot, one (shared with the rest of its read)
//! to complete it, and one to collect it; no allocation once the slot table
//! has grown to the connection's pipeline depth.

use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use crate::outbox::{InFlight, Outbox};
use crate::waiting;
use crate::Error;

/// The slot of the connection's own `CLIENT ID`: its reply goes to the
/// connection ([`crate::Connection::backend_id`]), not to a caller.
pub(crate) const BACKEND_ID_SLOT: u32 = u32::MAX;

/// One reply's place.
enum Slot {
    /// Not in use.
    Free,
    /// The caller waits (and wants this waker woken).
    Waiting(Option<Waker>),
    /// The reply arrived; the caller has not collected it yet.
    Ready(Result<Bytes, Error>),
    /// The caller went away; the reply is dropped when it arrives.
    Abandoned,
}

/// The queue and the reply slots of one connection.
#[derive(Default)]
pub(crate) struct Exchange {
    queue: Outbox,
    /// The writer, parked while the queue is empty.
    writer: Option<Waker>,
    /// The connection takes no more requests (it ended).
    closed: bool,
    /// Every handle is gone: the writer stops once the queue is empty.
    abandoned: bool,
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl Exchange {
    /// Queues a request whose reply the caller will collect from the
    /// returned slot, and the writer's waker if it must be woken. `None`
    /// when the connection ended.
    pub(crate) fn enqueue(
        &mut self,
        bytes: &Bytes,
        skip: u32,
        wants_reply: bool,
    ) -> Option<(Option<u32>, Option<Waker>)> {
        if self.closed {
            return None;
        }
        let slot = wants_reply.then(|| self.take_slot());
        self.queue.push(bytes, slot.map(|slot| InFlight { skip, slot }));
        Some((slot, self.writer.take()))
    }

    /// Queues the connection's own `CLIENT ID` (see [`BACKEND_ID_SLOT`]);
    /// the writer's waker if it must be woken. `None` when the connection
    /// ended.
    pub(crate) fn enqueue_backend_id(&mut self, bytes: &Bytes) -> Option<Option<Waker>> {
        if self.closed {
            return None;
        }
        let expected = InFlight {
            skip: 0,
            slot: BACKEND_ID_SLOT,
        };
        self.queue.push(bytes, Some(expected));
        Some(self.writer.take())
    }

    fn take_slot(&mut self) -> u32 {
        match self.free.pop() {
            Some(index) => {
                self.slots[index as usize] = Slot::Waiting(None);
                index
            }
            None => {
                self.slots.push(Slot::Waiting(None));
                (self.slots.len() - 1) as u32
            }
        }
    }

    fn release(&mut self, index: u32) {
        if let Slot::Ready(Ok(reply)) = std::mem::replace(&mut self.slots[index as usize], Slot::Free) {
            waiting::left(reply.len());
        }
        self.free.push(index);
    }

    /// Ready with `true` once requests are queued (the writer's waker is
    /// kept until then); ready with `false` when there will be none any
    /// more.
    pub(crate) fn poll_queued(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        if !self.queue.is_empty() {
            return Poll::Ready(true);
        }
        if self.abandoned || self.closed {
            return Poll::Ready(false);
        }
        if !self.writer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.writer = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// True when no request waits for the writer.
    pub(crate) fn nothing_queued(&self) -> bool {
        self.queue.is_empty()
    }

    /// Takes every queued request: swaps the queue with the writer's empty
    /// `outbox`, so both keep their memory.
    pub(crate) fn take_queued(&mut self, outbox: &mut Outbox) {
        debug_assert!(outbox.is_empty(), "the writer hands back an empty outbox");
        std::mem::swap(&mut self.queue, outbox);
    }

    /// Puts `result` in `slot`; the waker to wake, if the caller waits.
    pub(crate) fn complete(&mut self, slot: u32, result: Result<Bytes, Error>) -> Option<Waker> {
        if slot == BACKEND_ID_SLOT {
            return None;
        }
        waiting::arrived(result.as_ref().map_or(0, Bytes::len));
        match std::mem::replace(&mut self.slots[slot as usize], Slot::Ready(result)) {
            Slot::Waiting(waker) => waker,
            Slot::Abandoned => {
                self.release(slot);
                None
            }
            // A slot completes once; anything else would be a bug upstream,
            // and the later reply is simply kept.
            Slot::Ready(Ok(earlier)) => {
                waiting::left(earlier.len());
                None
            }
            Slot::Free | Slot::Ready(Err(_)) => None,
        }
    }

    /// The reply in `slot` if it arrived (the slot is then free again);
    /// otherwise the caller's waker is kept.
    pub(crate) fn poll_reply(
        &mut self,
        slot: u32,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Error>>> {
        match &mut self.slots[slot as usize] {
            Slot::Waiting(waker) => {
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Slot::Ready(_) => {
                let Slot::Ready(result) = std::mem::replace(&mut self.slots[slot as usize], Slot::Free)
                else {
                    unreachable!("matched Ready above");
                };
                self.free.push(slot);
                waiting::left(result.as_ref().map_or(0, Bytes::len));
                Poll::Ready(Some(result))
            }
            Slot::Free | Slot::Abandoned => Poll::Ready(None),
        }
    }

    /// The caller of `slot` no longer wants its reply.
    pub(crate) fn abandon(&mut self, slot: u32) {
        match self.slots[slot as usize] {
            Slot::Waiting(_) => self.slots[slot as usize] = Slot::Abandoned,
            Slot::Ready(_) => self.release(slot),
            Slot::Free | Slot::Abandoned => {}
        }
    }

    /// Every handle is gone; the writer's waker, to let it finish.
    pub(crate) fn abandon_all(&mut self) -> Option<Waker> {
        self.abandoned = true;
        self.writer.take()
    }

    /// Closes the connection to new requests and fails the queued ones
    /// with `error`; the wakers to wake.
    pub(crate) fn close(&mut self, error: &Error) -> Vec<Waker> {
        self.closed = true;
        let mut queued = std::mem::take(&mut self.queue);
        let mut wakers: Vec<Waker> = queued
            .take_expected()
            .filter_map(|expected| self.complete(expected.slot, Err(error.clone())))
            .collect();
        wakers.extend(self.writer.take());
        wakers
    }
}

impl Drop for Exchange {
    /// Replies never collected leave the count with their connection.
    fn drop(&mut self) {
        for slot in &self.slots {
            if let Slot::Ready(Ok(reply)) = slot {
                waiting::left(reply.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::task::noop_waker_ref;

    fn lost() -> Error {
        Error::ConnectionLost {
            addr: "node:1".into(),
            sent: false,
        }
    }

    #[test]
    fn replies_reach_their_slots_and_slots_are_reused() {
        let mut exchange = Exchange::default();
        let mut cx = Context::from_waker(noop_waker_ref());
        let (a, _) = exchange.enqueue(&Bytes::from_static(b"a"), 0, true).unwrap();
        let (b, _) = exchange.enqueue(&Bytes::from_static(b"b"), 0, true).unwrap();
        let (a, b) = (a.unwrap(), b.unwrap());
        let mut outbox = Outbox::default();
        assert_eq!(exchange.poll_queued(&mut cx), Poll::Ready(true));
        exchange.take_queued(&mut outbox);
        assert_eq!(outbox.requests(), 2);
        assert!(exchange.queue.is_empty());
        assert!(exchange.poll_reply(a, &mut cx).is_pending());
        exchange.complete(b, Ok(Bytes::from_static(b"+b")));
        exchange.complete(a, Ok(Bytes::from_static(b"+a")));
        assert!(matches!(exchange.poll_reply(a, &mut cx), Poll::Ready(Some(Ok(r))) if r == "+a"));
        assert!(matches!(exchange.poll_reply(b, &mut cx), Poll::Ready(Some(Ok(r))) if r == "+b"));
        let (c, _) = exchange.enqueue(&Bytes::from_static(b"c"), 0, true).unwrap();
        assert!(c == Some(a) || c == Some(b), "a freed slot is reused");
    }

    #[test]
    fn an_abandoned_reply_frees_its_slot_when_it_arrives() {
        let mut exchange = Exchange::default();
        let (slot, _) = exchange.enqueue(&Bytes::from_static(b"a"), 0, true).unwrap();
        let slot = slot.unwrap();
        exchange.abandon(slot);
        assert!(exchange.complete(slot, Ok(Bytes::new())).is_none());
        assert_eq!(exchange.free, [slot]);
    }

    #[test]
    fn closing_fails_what_is_queued_and_refuses_more() {
        let mut exchange = Exchange::default();
        let mut cx = Context::from_waker(noop_waker_ref());
        let (slot, _) = exchange.enqueue(&Bytes::from_static(b"a"), 0, true).unwrap();
        exchange.close(&lost());
        assert!(matches!(
            exchange.poll_reply(slot.unwrap(), &mut cx),
            Poll::Ready(Some(Err(Error::ConnectionLost { sent: false, .. })))
        ));
        assert!(exchange.enqueue(&Bytes::from_static(b"b"), 0, true).is_none());
        assert!(exchange.queue.is_empty());
        assert_eq!(exchange.poll_queued(&mut cx), Poll::Ready(false));
    }

    #[test]
    fn large_replies_are_counted_until_they_leave_their_slots() {
        // The only test here with replies past the threshold: the count is
        // the process's.
        let start = waiting::replies_waiting();
        let large = Bytes::from(vec![b'x'; waiting::COUNTED_FROM]);
        let mut exchange = Exchange::default();
        let mut cx = Context::from_waker(noop_waker_ref());
        let slots: Vec<u32> = (0..4)
            .map(|_| {
                exchange
                    .enqueue(&Bytes::from_static(b"r"), 0, true)
                    .unwrap()
                    .0
                    .unwrap()
            })
            .collect();
        exchange.abandon(slots[3]);
        for &slot in &slots {
            exchange.complete(slot, Ok(large.clone()));
        }
        // The abandoned one was dropped as it came.
        assert_eq!(waiting::replies_waiting() - start, 3 * large.len());
        assert!(exchange.poll_reply(slots[0], &mut cx).is_ready());
        exchange.abandon(slots[1]);
        assert_eq!(waiting::replies_waiting() - start, large.len());
        drop(exchange);
        assert_eq!(waiting::replies_waiting(), start);
    }
}
