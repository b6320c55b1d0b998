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
//!
//! Under `block` the queue never holds a thread: a full queue tells the
//! sessions to stop reading their clients ([`Queue::holds_clients`]) until
//! a writer makes room ([`Queue::room`]). A request already read still
//! runs and is recorded, so a lane may pass its capacity by at most what
//! the sessions had read when it filled.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::config::OnFull;
use crate::record::timestamp;

/// The queue of every sink. Shared by the sessions and the writers.
#[derive(Debug)]
pub struct Queue {
    state: Mutex<State>,
    /// Woken when no lane is full any more (`block`).
    room: tokio::sync::Notify,
    /// Under `block`: a lane is full, so sessions read no more.
    full: AtomicBool,
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
    /// Time clients were not read for want of room (`block`), added up
    /// over the sessions.
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
            room: tokio::sync::Notify::new(),
            full: AtomicBool::new(false),
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
    /// `fail`, false when there is none (the request is refused); under
    /// `block`, the place is given even past the capacity, and a full
    /// queue holds the sessions' reading ([`Queue::holds_clients`]); under
    /// `drop`, promises nothing (true).
    pub fn reserve(&self) -> bool {
        if self.on_full == OnFull::Drop {
            return true;
        }
        let mut state = self.lock();
        if self.on_full == OnFull::Fail && !self.has_room(&state, 1) && !state.closed {
            state.failed += 1;
            metrics::counter!("valkey_proxy_audit_failed_total").increment(1);
            return false;
        }
        state.reserved += 1;
        self.note_fullness(&state);
        true
    }

    /// Under `block`, whether a lane is full: sessions then read no more
    /// from the clients the audit log records until [`Queue::room`].
    pub fn holds_clients(&self) -> bool {
        self.full.load(Ordering::Acquire)
    }

    /// Completes when a writer has made room. A wake-up may come while
    /// still full, and one may be missed: check again, and wait with a
    /// timeout.
    pub async fn room(&self) {
        self.room.notified().await;
    }

    /// Counts `waited`, a time a session did not read for want of room.
    pub fn add_blocked(&self, waited: Duration) {
        self.lock().blocked += waited;
        metrics::counter!("valkey_proxy_audit_blocked_us_total").increment(waited.as_micros() as u64);
    }

    /// Under `block`, notes whether a lane is full, and wakes the held
    /// sessions when none is any more.
    fn note_fullness(&self, state: &State) {
        if self.on_full == OnFull::Block {
            let full = !self.has_room(state, 1) && !state.closed;
            if self.full.swap(full, Ordering::AcqRel) && !full {
                self.room.notify_waiters();
            }
        }
    }

    /// Gives back `count` places promised ([`Queue::reserve`]) that no
    /// record will take (the client left first).
    pub fn release(&self, count: usize) {
        if count == 0 || self.on_full == OnFull::Drop {
            return;
        }
        let mut state = self.lock();
        state.reserved = state.reserved.saturating_sub(count);
        self.note_fullness(&state);
    }

    /// Takes a record: `json` is its JSON object (`{...}`), which gets its
    /// sequence number put first. `reserved` when it takes a place promised
    /// to its request. Returns its sequence number.
    pub fn push(&self, json: &[u8], node: &str, reserved: bool) -> u64 {
        let mut state = self.lock();
        // Under `drop` nothing is promised.
        let reserved = reserved && self.on_full != OnFull::Drop;
        if reserved {
            state.reserved = state.reserved.saturating_sub(1);
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
        // Writers take batches: woken when a lane holds a batch's worth,
        // else at their next tick. A wake-up per record cost a futex call
        // and a context switch per record.
        let wake = state.lanes.iter().any(|lane| lane.lines.len() == self.batch());
        self.note_fullness(&state);
        drop(state);
        metrics::counter!("valkey_proxy_audit_records_total").increment(1);
        if wake {
            self.work.notify_all();
        }
        seq
    }

    /// How many records wake a writer before its tick.
    fn batch(&self) -> usize {
        (self.capacity / 4).clamp(1, 256)
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
        self.note_fullness(&state);
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
        let mut state = self.lock();
        state.closed = true;
        self.note_fullness(&state);
        drop(state);
        self.work.notify_all();
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
mod tests;
