//! [`Outbox`]: the requests queued on a connection and not yet taken by its
//! writer, kept as the bytes the writer will send.
//!
//! A request is copied in as it is queued (while the caller's bytes are
//! still warm in the cache), so the writer takes a whole batch by swapping
//! two outboxes under the lock and writes it as it is: no list of requests
//! between the callers and the socket, and no reference count taken per
//! request. Only large requests are not copied: they are kept as they are
//! and written in their place.

use bytes::{Bytes, BytesMut};

/// Requests at least this long are kept as they are rather than copied.
pub(crate) const COPY_LIMIT: usize = 16 * 1024;
/// An outbox that grew past this (a burst of large pipelines) gives its
/// memory back once written.
const KEPT_CAPACITY: usize = 256 * 1024;

/// A request written (or about to be) whose reply a caller waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InFlight {
    /// Replies to discard before the one to return (1 for `ASKING` + command).
    pub(crate) skip: u32,
    /// Where the reply goes.
    pub(crate) slot: u32,
}

/// Queued requests, in order.
#[derive(Default)]
pub(crate) struct Outbox {
    /// The small requests, back to back.
    copied: BytesMut,
    /// The large requests, each with the length `copied` had when it was
    /// queued: it is written after those bytes.
    large: Vec<(usize, Bytes)>,
    /// The replies the requests expect, in order (requests on a stream
    /// connection expect none here).
    expected: Vec<InFlight>,
    requests: usize,
}

impl Outbox {
    /// Queues one request (or `ASKING` and a request: see
    /// [`InFlight::skip`]).
    pub(crate) fn push(&mut self, bytes: &Bytes, expected: Option<InFlight>) {
        if bytes.len() < COPY_LIMIT {
            self.copied.extend_from_slice(bytes);
        } else {
            self.large.push((self.copied.len(), bytes.clone()));
        }
        self.expected.extend(expected);
        self.requests += 1;
    }

    /// True when nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.requests == 0
    }

    /// How many requests are queued.
    pub(crate) fn requests(&self) -> usize {
        self.requests
    }

    /// Takes the replies the queued requests expect, in order.
    pub(crate) fn take_expected(&mut self) -> std::vec::Drain<'_, InFlight> {
        self.expected.drain(..)
    }

    /// The bytes to write, in order: runs of copied requests and the large
    /// requests between them. Some runs may be empty.
    pub(crate) fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        let mut from = 0;
        let around_large = self.large.iter().flat_map(move |(at, large)| {
            let before = &self.copied[from..*at];
            from = *at;
            [before, &large[..]]
        });
        let last = self.large.last().map_or(0, |(at, _)| *at);
        around_large.chain(std::iter::once(&self.copied[last..]))
    }

    /// Empties the outbox, keeping its memory unless it grew large.
    pub(crate) fn clear(&mut self) {
        if self.copied.capacity() > KEPT_CAPACITY {
            self.copied = BytesMut::new();
        } else {
            self.copied.clear();
        }
        self.large.clear();
        self.expected.clear();
        self.requests = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(outbox: &Outbox) -> Vec<u8> {
        outbox.chunks().flatten().copied().collect()
    }

    #[test]
    fn keeps_the_order_of_small_and_large_requests() {
        let large = Bytes::from(vec![b'L'; COPY_LIMIT]);
        let mut outbox = Outbox::default();
        outbox.push(&Bytes::from_static(b"a"), Some(InFlight { skip: 0, slot: 1 }));
        outbox.push(&large, Some(InFlight { skip: 1, slot: 2 }));
        outbox.push(&large, None);
        outbox.push(&Bytes::from_static(b"bc"), Some(InFlight { skip: 0, slot: 3 }));
        let mut expected = b"a".to_vec();
        expected.extend_from_slice(&large);
        expected.extend_from_slice(&large);
        expected.extend_from_slice(b"bc");
        assert_eq!(written(&outbox), expected);
        assert_eq!(outbox.requests(), 4);
        assert_eq!(
            outbox.take_expected().map(|e| e.slot).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        outbox.clear();
        assert!(outbox.is_empty());
        assert!(written(&outbox).is_empty());
    }

    #[test]
    fn a_large_request_first_or_last_is_written_in_its_place() {
        let large = Bytes::from(vec![b'L'; COPY_LIMIT + 1]);
        let mut outbox = Outbox::default();
        outbox.push(&large, None);
        outbox.push(&Bytes::from_static(b"x"), None);
        outbox.push(&large, None);
        let mut expected = large.to_vec();
        expected.push(b'x');
        expected.extend_from_slice(&large);
        assert_eq!(written(&outbox), expected);
    }
}
