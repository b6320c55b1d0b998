//! [`AclLog`]: the refusals `ACL LOG` shows, newest first, grouped and
//! bounded as Valkey's `addACLLogEntry` does.

use std::collections::VecDeque;
use std::sync::Mutex;

use resp::Frame;

/// Valkey's `acllog-max-len` default: the entries kept.
pub const MAX_ENTRIES: usize = 128;

/// Refusals of the same kind within this many milliseconds share an entry
/// (Valkey's `ACL_LOG_GROUPING_MAX_TIME_DELTA`).
const GROUPING_MS: u64 = 60_000;

/// How many of the newest entries a new refusal is compared with (Valkey
/// bounds the work the same way).
const GROUPING_SCAN: usize = 10;

/// What was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A command.
    Command,
    /// A key.
    Key,
    /// A channel.
    Channel,
    /// A login.
    Auth,
}

/// Where the refused command was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// Sent by the client.
    TopLevel,
    /// Queued in MULTI.
    Multi,
}

/// One refusal, as it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// What was refused.
    pub reason: Reason,
    /// Where.
    pub context: Context,
    /// The command's full name, the key, the channel, or `AUTH`.
    pub object: String,
    /// The user refused (for a login, the name tried).
    pub username: String,
    /// The user's tenant (0 for none), so that a tenant sees only its own.
    pub tenant: u16,
    /// The client, as CLIENT INFO shows it.
    pub client_info: String,
}

#[derive(Clone, Debug)]
struct Entry {
    event: Event,
    count: u64,
    id: u64,
    created_ms: u64,
    updated_ms: u64,
}

/// The log, shared by every session of the proxy.
#[derive(Debug, Default)]
pub struct AclLog {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: VecDeque<Entry>,
    next_id: u64,
}

impl AclLog {
    /// Records `event` at `now_ms` (milliseconds since the epoch): a
    /// repeat of one of the newest entries within a minute counts there,
    /// anything else becomes the newest entry.
    pub fn record(&self, event: Event, now_ms: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let repeat = inner.entries.iter().take(GROUPING_SCAN).position(|entry| {
            let old = &entry.event;
            old.reason == event.reason
                && old.context == event.context
                && entry.updated_ms.abs_diff(now_ms) <= GROUPING_MS
                && old.object == event.object
                && old.username == event.username
        });
        if let Some(index) = repeat {
            if let Some(mut entry) = inner.entries.remove(index) {
                entry.count += 1;
                entry.updated_ms = now_ms;
                entry.event.client_info = event.client_info;
                inner.entries.push_front(entry);
            }
            return;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        inner.entries.push_front(Entry {
            event,
            count: 1,
            id,
            created_ms: now_ms,
            updated_ms: now_ms,
        });
        inner.entries.truncate(MAX_ENTRIES);
    }

    /// `ACL LOG [count]`: up to `count` of the newest entries that `shown`
    /// lets through, as Valkey's reply.
    pub fn reply(&self, count: usize, now_ms: u64, shown: impl Fn(&Event) -> bool) -> Frame {
        let inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entries = inner
            .entries
            .iter()
            .filter(|entry| shown(&entry.event))
            .take(count)
            .map(|entry| entry.frame(now_ms))
            .collect();
        Frame::Array(entries)
    }

    /// `ACL LOG RESET`: forgets the entries `shown` lets through.
    pub fn reset(&self, shown: impl Fn(&Event) -> bool) {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.entries.retain(|entry| !shown(&entry.event));
    }
}

impl Entry {
    fn frame(&self, now_ms: u64) -> Frame {
        let text = |s: &str| Frame::Bulk(s.to_string().into());
        let reason = match self.event.reason {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Channel => "channel",
            Reason::Auth => "auth",
        };
        let context = match self.event.context {
            Context::TopLevel => "toplevel",
            Context::Multi => "multi",
        };
        let age = now_ms.saturating_sub(self.updated_ms) as f64 / 1000.0;
        Frame::Map(vec![
            (text("count"), Frame::Integer(self.count as i64)),
            (text("reason"), text(reason)),
            (text("context"), text(context)),
            (text("object"), text(&self.event.object)),
            (text("username"), text(&self.event.username)),
            (text("age-seconds"), Frame::Double(format!("{age}").into())),
            (text("client-info"), text(&self.event.client_info)),
            (text("entry-id"), Frame::Integer(self.id as i64)),
            (text("timestamp-created"), Frame::Integer(self.created_ms as i64)),
            (
                text("timestamp-last-updated"),
                Frame::Integer(self.updated_ms as i64),
            ),
        ])
    }
}
