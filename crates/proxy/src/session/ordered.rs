//! [`InOrder`]: the replies a session waits for, in request order.
//!
//! Every request was already started when it was pushed (the stack does its
//! work in `call`), so polling only collects results. Only the oldest
//! request is polled, and only it holds the session's waker: when it
//! completes, the ones behind it are polled in turn until one is not ready.
//! Cheaper than `FuturesOrdered`, which allocates a task per future and
//! wakes for each completion.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Futures completed strictly in the order they were pushed, each with a
/// tag handed out with its result (the request, for the slow log), kept
/// apart so that the futures stay small to move.
#[derive(Debug)]
pub(super) struct InOrder<F, T = ()> {
    queue: VecDeque<F>,
    tags: VecDeque<T>,
}

impl<F: Future + Unpin, T: Default> InOrder<F, T> {
    /// An empty queue.
    pub(super) fn new() -> Self {
        InOrder {
            queue: VecDeque::new(),
            tags: VecDeque::new(),
        }
    }

    /// Adds a started request at the back, with the default tag.
    pub(super) fn push_back(&mut self, future: F) {
        self.queue.push_back(future);
        self.tags.push_back(T::default());
    }

    /// Tags the request at the back.
    pub(super) fn tag_back(&mut self, tag: T) {
        if let Some(back) = self.tags.back_mut() {
            *back = tag;
        }
    }

    /// Requests waiting.
    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing is waiting.
    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Hands every result that is ready, oldest first, to `each`, until one
    /// is not ready or `each` returns true (stop: the connection closes).
    /// Ready with that flag when at least one result was handed out.
    pub(super) fn poll_ready(
        &mut self,
        cx: &mut Context<'_>,
        mut each: impl FnMut(F::Output, T) -> bool,
    ) -> Poll<bool> {
        let mut handed = false;
        while let Some(front) = self.queue.front_mut() {
            let Poll::Ready(output) = Pin::new(front).poll(cx) else {
                break;
            };
            self.queue.pop_front();
            let tag = self.tags.pop_front().unwrap_or_default();
            handed = true;
            if each(output, tag) {
                return Poll::Ready(true);
            }
        }
        if handed {
            Poll::Ready(false)
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::{ready, Ready};
    use futures::task::noop_waker_ref;

    #[test]
    fn hands_out_in_order_and_stops_when_asked() {
        let mut queue: InOrder<Ready<u32>, u32> = InOrder::new();
        for i in 0..5 {
            queue.push_back(ready(i));
            queue.tag_back(i * 10);
        }
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut seen = Vec::new();
        assert_eq!(
            queue.poll_ready(&mut cx, |n, tag| {
                seen.push((n, tag));
                n == 2
            }),
            Poll::Ready(true)
        );
        assert_eq!(seen, [(0, 0), (1, 10), (2, 20)]);
        assert_eq!(queue.len(), 2);
    }
}
