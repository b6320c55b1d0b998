//! [`Queue`]: the bounded queue between the sessions that make records and
//! the writer of each sink, and what happens when a sink's part is full
//! ([`OnFull`]).
//!
//! Every record takes the next sequence number when it enters, under the
//! same lock that puts it in every sink's lane, so that each lane holds
//! records in sequence order. A record a full lane cannot take under
//! `drop` is counted in that lane's gap, written as one gap record before
//! the next record the lane takes: the sequence numbers of the records and
//! the gaps a sink receives account for every number.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::config::OnFull;
use crate::record::timestamp;

/// The queue of every sink. Shared by the sessions and the writers.
#[derive(Debug)]
pub struct Queue {
    state: Mutex<State>,
    /// Signalled when a lane has room again.
    room: Condvar,
    /// Signalled when a lane has records for its writer.
    work: Condvar,
    capacity: usize,
    on_full: OnFull,
}

#[derive(Debug, Default)]
struct State {
    next_seq: u64,
    /// Places promised to audited requests before they run (`block`,
    /// `fail`): each counts against every lane's room.
    reserved: usize,
    lanes: Vec<Lane>,
    records: u64,
    failed: u64,
    blocked: Duration,
    closed: bool,
}

#[derive(Debug, Default)]
struct Lane {
    lines: VecDeque<(Vec<u8>, Instant)>,
    gap: Option<Gap>,
    dropped: u64,
    written: u64,
    up: bool,
}

/// Records one lane could not take, in a row.
#[derive(Debug, Serialize)]
struct Gap {
    event: &'static str,
    node: String,
    from_seq: u64,
    to_seq: u64,
    dropped: u64,
    from_time: String,
    to_time: String,
    reason: &'static str,
}

/// What the queue shows of itself (`PROXY AUDIT STATUS`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Records taken (given a sequence number).
    pub records: u64,
    /// Requests refused because there was no room (`fail`).
    pub failed: u64,
    /// Time requests waited for room (`block`).
    pub blocked: Duration,
    /// Places promised to requests running now.
    pub reserved: usize,
    /// Each sink's lane.
    pub sinks: Vec<LaneStatus>,
}

/// One sink's part of the queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaneStatus {
    /// Records waiting for the writer.
    pub queued: usize,
    /// Records written.
    pub written: u64,
    /// Records dropped (`drop`), each accounted for by a gap record.
    pub dropped: u64,
    /// False while the sink cannot be written (a collector away).
    pub up: bool,
    /// How long the oldest waiting record has waited.
    pub oldest: Duration,
}

impl Queue {
    /// A queue of `sinks` lanes of `capacity` records each.
    pub fn new(sinks: usize, capacity: usize, on_full: OnFull) -> Queue {
        Queue {
            state: Mutex::new(State {
                next_seq: 1,
                lanes: (0..sinks)
                    .map(|_| Lane {
                        up: true,
                        ..Lane::default()
                    })
                    .collect(),
                ..State::default()
            }),
            room: Condvar::new(),
            work: Condvar::new(),
            capacity,
            on_full,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn has_room(&self, state: &State, extra: usize) -> bool {
        state
            .lanes
            .iter()
            .all(|lane| lane.lines.len() + state.reserved + extra <= self.capacity)
    }

    /// Promises a place to an audited request before it runs. Under
    /// `block`, waits for room; under `fail`, false when there is none
    /// (the request is refused); under `drop`, promises nothing (true).
    pub fn reserve(&self) -> bool {
        if self.on_full == OnFull::Drop {
            return true;
        }
        let mut state = self.lock();
        let started = Instant::now();
        let mut waited = false;
        while !self.has_room(&state, 1) && !state.closed {
            if self.on_full == OnFull::Fail {
                state.failed += 1;
                metrics::counter!("valkey_proxy_audit_failed_total").increment(1);
                return false;
            }
            waited = true;
            state = self
                .room
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        if waited {
            let blocked = started.elapsed();
            state.blocked += blocked;
            metrics::counter!("valkey_proxy_audit_blocked_us_total").increment(blocked.as_micros() as u64);
        }
        state.reserved += 1;
        true
    }

    /// Gives back `count` places promised ([`Queue::reserve`]) that no
    /// record will take (the client left first).
    pub fn release(&self, count: usize) {
        if count == 0 || self.on_full == OnFull::Drop {
            return;
        }
        let mut state = self.lock();
        state.reserved = state.reserved.saturating_sub(count);
        drop(state);
        self.room.notify_all();
    }

    /// Takes a record: `json` is its JSON object (`{...}`), which gets its
    /// sequence number put first. `reserved` when it takes a place promised
    /// to its request. Returns its sequence number.
    pub fn push(&self, json: &[u8], node: &str, reserved: bool) -> u64 {
        let mut state = self.lock();
        if reserved && self.on_full != OnFull::Drop {
            state.reserved = state.reserved.saturating_sub(1);
        } else if self.on_full == OnFull::Block {
            while !self.has_room(&state, 1) && !state.closed {
                state = self
                    .room
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.records += 1;
        let now = Instant::now();
        let mut line = Vec::with_capacity(json.len() + 24);
        line.extend_from_slice(b"{\"seq\":");
        line.extend_from_slice(seq.to_string().as_bytes());
        if json.len() > 2 {
            line.push(b',');
        }
        line.extend_from_slice(json.get(1..).unwrap_or(b"}"));
        line.push(b'\n');
        let capacity = self.capacity;
        let lanes = state.lanes.len();
        for (index, lane) in state.lanes.iter_mut().enumerate() {
            // A reserved record has its place; under `drop` a full lane
            // counts it in its gap.
            let full = lane.lines.len() >= capacity && !reserved;
            if full && self.on_full != OnFull::Block {
                let at = timestamp(SystemTime::now());
                lane.dropped += 1;
                metrics::counter!("valkey_proxy_audit_dropped_total").increment(1);
                match lane.gap.as_mut() {
                    Some(gap) => {
                        gap.to_seq = seq;
                        gap.dropped += 1;
                        gap.to_time = at;
                    }
                    None => {
                        lane.gap = Some(Gap {
                            event: "audit_gap",
                            node: node.to_string(),
                            from_seq: seq,
                            to_seq: seq,
                            dropped: 1,
                            from_time: at.clone(),
                            to_time: at,
                            reason: "queue_full",
                        })
                    }
                }
                continue;
            }
            if let Some(gap) = lane.gap.take() {
                let mut gap_line = serde_json::to_vec(&gap).unwrap_or_default();
                gap_line.push(b'\n');
                lane.lines.push_back((gap_line, now));
            }
            if index + 1 == lanes {
                lane.lines.push_back((std::mem::take(&mut line), now));
            } else {
                lane.lines.push_back((line.clone(), now));
            }
        }
        drop(state);
        metrics::counter!("valkey_proxy_audit_records_total").increment(1);
        self.work.notify_all();
        seq
    }

    /// The records waiting for sink `lane`'s writer, all of them, once
    /// there are some or `wait` has passed (then possibly none). `None`
    /// once the queue is closed and the lane is empty.
    pub fn take(&self, lane: usize, wait: Duration) -> Option<Vec<Vec<u8>>> {
        let mut state = self.lock();
        let deadline = Instant::now() + wait;
        while state.lanes[lane].lines.is_empty() {
            if state.closed {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Some(Vec::new());
            }
            state = self
                .work
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        let lines = state.lanes[lane].lines.drain(..).map(|(line, _)| line).collect();
        drop(state);
        self.room.notify_all();
        Some(lines)
    }

    /// Sink `lane` wrote `count` records (or, `up` false, could not write).
    pub fn wrote(&self, lane: usize, count: usize, up: bool) {
        let mut state = self.lock();
        let lane = &mut state.lanes[lane];
        lane.written += count as u64;
        lane.up = up;
    }

    /// No more records: writers finish what is queued and stop, and
    /// waiting requests go on.
    pub fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
        self.room.notify_all();
    }

    /// What the queue shows of itself.
    pub fn status(&self) -> Status {
        let state = self.lock();
        Status {
            records: state.records,
            failed: state.failed,
            blocked: state.blocked,
            reserved: state.reserved,
            sinks: state
                .lanes
                .iter()
                .map(|lane| LaneStatus {
                    queued: lane.lines.len(),
                    written: lane.written,
                    dropped: lane.dropped,
                    up: lane.up,
                    oldest: lane.lines.front().map_or(Duration::ZERO, |(_, at)| at.elapsed()),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(lines: &[Vec<u8>]) -> Vec<String> {
        lines
            .iter()
            .map(|line| {
                let value: serde_json::Value = serde_json::from_slice(line).unwrap();
                match value.get("seq") {
                    Some(seq) => seq.to_string(),
                    None => format!(
                        "gap {}-{} ({})",
                        value["from_seq"], value["to_seq"], value["dropped"]
                    ),
                }
            })
            .collect()
    }

    #[test]
    fn a_full_lane_under_drop_writes_a_gap_that_accounts_for_every_number() {
        let queue = Queue::new(1, 2, OnFull::Drop);
        for _ in 0..5 {
            queue.push(br#"{"event":"command"}"#, "n", false);
        }
        assert_eq!(seqs(&queue.take(0, Duration::ZERO).unwrap()), ["1", "2"]);
        queue.push(b"{}", "n", false);
        assert_eq!(
            seqs(&queue.take(0, Duration::ZERO).unwrap()),
            ["gap 3-5 (3)", "6"]
        );
        assert_eq!(queue.status().sinks[0].dropped, 3);
    }

    #[test]
    fn under_fail_a_request_without_room_is_refused_and_a_promise_holds_a_place() {
        let queue = Queue::new(2, 2, OnFull::Fail);
        assert!(queue.reserve());
        queue.push(b"{}", "n", false);
        // One record and one promise: no room for another promise.
        assert!(!queue.reserve());
        assert_eq!(queue.status().failed, 1);
        // The promised record still gets its place.
        queue.push(b"{}", "n", true);
        assert_eq!(queue.status().sinks[1].queued, 2);
        assert_eq!(queue.take(1, Duration::ZERO).unwrap().len(), 2);
        // A lane taken by its writer makes room again only when both are.
        assert!(!queue.reserve());
        queue.take(0, Duration::ZERO);
        assert!(queue.reserve());
        queue.release(1);
        assert_eq!(queue.status().reserved, 0);
    }

    #[test]
    fn under_block_a_request_waits_for_the_writer() {
        let queue = std::sync::Arc::new(Queue::new(1, 1, OnFull::Block));
        queue.push(b"{}", "n", false);
        let writer = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                queue.take(0, Duration::ZERO)
            })
        };
        assert!(queue.reserve());
        // Room came only from the writer taking the record.
        assert_eq!(queue.status().sinks[0].queued, 0);
        assert_eq!(writer.join().unwrap().unwrap().len(), 1);
    }
}
