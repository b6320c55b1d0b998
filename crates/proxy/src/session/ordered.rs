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

/// Futures completed strictly in the order they were pushed, some with a
/// tag handed out with their result (the request, for the slow log).
/// Tags are kept apart, by position, so that an untagged future costs
/// nothing more and the futures stay small to move.
#[derive(Debug)]
pub(super) struct InOrder<F, T = ()> {
    queue: VecDeque<F>,
    /// Futures pushed so far: the position of the next one.
    pushed: u64,
    /// Futures handed out so far: the position of the front one.
    handed: u64,
    /// The tagged futures' positions and tags, in order.
    tags: VecDeque<(u64, T)>,
}

impl<F: Future + Unpin, T> InOrder<F, T> {
    /// An empty queue.
    pub(super) fn new() -> Self {
        InOrder {
            queue: VecDeque::new(),
            pushed: 0,
            handed: 0,
            tags: VecDeque::new(),
        }
    }

    /// Adds a started request at the back.
    pub(super) fn push_back(&mut self, future: F) {
        self.queue.push_back(future);
        self.pushed += 1;
    }

    /// Tags the request at the back.
    pub(super) fn tag_back(&mut self, tag: T) {
        if let Some(back) = self.pushed.checked_sub(1) {
            self.tags.push_back((back, tag));
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
        mut each: impl FnMut(F::Output, Option<T>) -> bool,
    ) -> Poll<bool> {
        let mut handed = false;
        while let Some(front) = self.queue.front_mut() {
            let Poll::Ready(output) = Pin::new(front).poll(cx) else {
                break;
            };
            self.queue.pop_front();
            let position = self.handed;
            self.handed += 1;
            let tag = match self.tags.front() {
                Some((tagged, _)) if *tagged == position => self.tags.pop_front().map(|(_, tag)| tag),
                _ => None,
            };
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
            if i != 1 {
                queue.tag_back(i * 10);
            }
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
        assert_eq!(seen, [(0, Some(0)), (1, None), (2, Some(20))]);
        assert_eq!(queue.len(), 2);
    }
}
