//! An audit log that never loses a record silently.
//!
//! Sessions make [`Record`]s (one JSON object per line) of what the
//! [`Filter`] selects and hand them to the [`Audit`]; a bounded [`Queue`]
//! holds them for each sink's writer thread ([`writer`]): a file rotated by
//! the writer itself ([`FileSink`]) or a TCP collector ([`TcpSink`]).
//! When a sink's queue is full, the operator's [`OnFull`] policy decides:
//! the request waits (`block`), the record is counted in a gap record
//! written as soon as there is room (`drop`), or the audited request is
//! refused before it runs (`fail`). Every record carries a per-process
//! sequence number with no gaps, so a reader can tell that nothing is
//! missing.
//!
//! What a script runs inside the server is invisible to a proxy: a script
//! is recorded as the EVAL or FCALL that ran it, with its declared keys.

use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

use serde::Serialize;

pub mod config;
pub mod file;
pub mod filter;
mod json;
pub mod queue;
pub mod record;
pub mod tcp;
pub mod writer;

pub use config::{AuditConfig, EventKind, Fsync, OnFull, Payload, SinkConfig};
pub use file::FileSink;
pub use filter::Filter;
pub use queue::{LaneStatus, Queue, Status};
pub use record::{Outcome, Record};
pub use tcp::TcpSink;

thread_local! {
    /// Where a session's thread writes a record before the queue takes it.
    static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A running audit log: its filters, its queue and its writers.
#[derive(Debug)]
pub struct Audit {
    queue: Arc<Queue>,
    /// Swapped by a configuration reload ([`Audit::set_filter`]).
    filter: arc_swap::ArcSwap<Filter>,
    node: String,
    sinks: Vec<String>,
    asked: Arc<file::Asked>,
    writers: Mutex<Vec<JoinHandle<()>>>,
}

/// The first record of a process whose file sink held records of an
/// earlier one.
#[derive(Serialize)]
struct Restart<'a> {
    time: String,
    node: &'a str,
    event: &'static str,
    /// The last record of the earlier process that reached the file.
    last_seq_durable: u64,
}

/// A configuration reload, recorded (event `config_reload`) with the
/// `admin` events: what changed, or why nothing did.
#[derive(Debug, Serialize)]
pub struct ConfigReload<'a> {
    /// `ok` (applied), `dryrun` (only listed) or `error` (nothing changed).
    pub result: &'a str,
    /// What differed, as the reload lists it (never a secret).
    pub changes: &'a [String],
    /// The hash of the configuration in force afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<&'a str>,
    /// Why the file was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

/// [`ConfigReload`] as a record.
#[derive(Serialize)]
struct ReloadRecord<'a> {
    time: String,
    node: &'a str,
    event: &'static str,
    #[serde(flatten)]
    reload: &'a ConfigReload<'a>,
}

impl Audit {
    /// Records a configuration reload, when the `admin` events are
    /// recorded.
    pub fn record_config_reload(&self, reload: &ConfigReload<'_>) {
        if !self.filter().wants(EventKind::Admin) {
            return;
        }
        let record = ReloadRecord {
            time: record::timestamp(SystemTime::now()),
            node: &self.node,
            event: "config_reload",
            reload,
        };
        let json = serde_json::to_vec(&record).unwrap_or_default();
        self.queue.push(&json, &self.node, false);
    }

    /// Opens the sinks of `config` and starts their writers; `node` names
    /// this proxy when the configuration does not.
    ///
    /// # Errors
    /// A filter that does not parse, or a sink that cannot be opened.
    pub fn start(config: &AuditConfig, node: &str, table: &router::CommandTable) -> io::Result<Arc<Audit>> {
        let invalid = |error: String| io::Error::new(io::ErrorKind::InvalidInput, error);
        config.check(table).map_err(invalid)?;
        let filter = Filter::new(config, table).map_err(invalid)?;
        let node = config.node.clone().unwrap_or_else(|| node.to_string());
        let queue = Arc::new(Queue::new(
            config.sinks.len(),
            config.queue_records,
            config.on_full,
        ));
        let asked = Arc::new(file::Asked::default());
        let mut sinks: Vec<Box<dyn writer::Sink>> = Vec::new();
        let mut last_seq = None;
        for sink in &config.sinks {
            sinks.push(match sink {
                SinkConfig::File {
                    path,
                    rotate_bytes,
                    rotate_secs,
                    keep,
                    fsync,
                } => {
                    let (sink, last) = FileSink::open(
                        Path::new(path),
                        *rotate_bytes,
                        *rotate_secs,
                        *keep,
                        *fsync,
                        asked.clone(),
                    )?;
                    last_seq = last_seq.max(last);
                    Box::new(sink)
                }
                SinkConfig::Tcp { addr } => Box::new(TcpSink::new(addr)),
            });
        }
        let names = sinks.iter().map(|sink| sink.describe()).collect();
        let mut writers = Vec::new();
        for (lane, sink) in sinks.into_iter().enumerate() {
            writers.push(writer::spawn(queue.clone(), lane, sink)?);
        }
        let audit = Arc::new(Audit {
            queue,
            filter: arc_swap::ArcSwap::from_pointee(filter),
            node,
            sinks: names,
            asked,
            writers: Mutex::new(writers),
        });
        if let Some(last_seq_durable) = last_seq {
            let restart = Restart {
                time: record::timestamp(SystemTime::now()),
                node: &audit.node,
                event: "audit_restart",
                last_seq_durable,
            };
            let json = serde_json::to_vec(&restart).unwrap_or_default();
            audit.queue.push(&json, &audit.node, false);
        }
        Ok(audit)
    }

    /// Its filters, as the last reload left them.
    pub fn filter(&self) -> arc_swap::Guard<Arc<Filter>> {
        self.filter.load()
    }

    /// Records what `filter` selects from the next event on (a reload
    /// that changed the filters and not the sinks or the queue).
    pub fn set_filter(&self, filter: Filter) {
        self.filter.store(Arc::new(filter));
    }

    /// This proxy's name in records.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Promises a place to an audited request before it runs
    /// ([`Queue::reserve`]): false when it must be refused (`fail`).
    pub fn reserve(&self) -> bool {
        self.queue.reserve()
    }

    /// Under `on_full = "block"`, whether the queue is full: sessions of
    /// the clients it records read nothing more until [`Audit::room`].
    pub fn holds_clients(&self) -> bool {
        self.queue.holds_clients()
    }

    /// Completes when the queue may have room again ([`Queue::room`]).
    pub async fn room(&self) {
        self.queue.room().await;
    }

    /// Counts `waited`, a time a client was not read for want of room.
    pub fn add_blocked(&self, waited: std::time::Duration) {
        self.queue.add_blocked(waited);
    }

    /// Gives back places promised to requests that made no record.
    pub fn release(&self, count: usize) {
        self.queue.release(count);
    }

    /// Takes `record` (with the place promised to its request when
    /// `reserved`); returns its sequence number.
    pub fn record(&self, record: &Record<'_>, reserved: bool) -> u64 {
        BUFFER.with(|buffer| {
            let mut buffer = buffer.borrow_mut();
            buffer.clear();
            record.write_json(&mut buffer);
            self.queue.push(&buffer, &self.node, reserved)
        })
    }

    /// Takes a record written already, its JSON object in `json`
    /// ([`Record::write_head`] then [`record::Outcome::write_tail`]).
    pub fn record_json(&self, json: &[u8], reserved: bool) -> u64 {
        self.queue.push(json, &self.node, reserved)
    }

    /// The queue's figures, and each sink's.
    pub fn status(&self) -> Status {
        self.queue.status()
    }

    /// The sinks, in words, in the order of [`Status::sinks`].
    pub fn sinks(&self) -> &[String] {
        &self.sinks
    }

    /// File sinks open their file again under its name (after an outside
    /// logrotate moved it; SIGUSR1).
    pub fn reopen(&self) {
        self.asked.reopen.fetch_add(1, Ordering::AcqRel);
    }

    /// File sinks rotate at their next tick (`PROXY AUDIT ROTATE`).
    pub fn rotate(&self) {
        self.asked.rotate.fetch_add(1, Ordering::AcqRel);
    }

    /// Writes what is queued, makes it durable, and stops the writers.
    pub fn close(&self) {
        self.queue.close();
        let writers = std::mem::take(&mut *self.writers.lock().unwrap_or_else(|e| e.into_inner()));
        for writer in writers {
            let _ = writer.join();
        }
    }
}
