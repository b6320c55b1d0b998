//! The routing decision: a pure function from a request and a topology to a
//! [`Route`]. No I/O, no locks; tested with tables of cases.

use resp::{Args, Request};
use topology::{Mode, Topology};

use crate::command::keys::for_each_key;
use crate::command::{CommandSpec, RequestPolicy, ResponsePolicy};
use crate::slot::key_slot;
use crate::Error;

/// Where reads may go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadPolicy {
    /// Everything goes to primaries.
    #[default]
    Primary,
    /// Read-only commands go to a replica of the shard when it has one.
    PreferReplica,
}

/// Where a request goes. Indexes are `u32` to keep it (and every
/// [`crate::Command`], which carries one) small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// One shard (an index into [`Topology::shards`]).
    Shard {
        /// The shard.
        shard: u32,
        /// The keys' slot, in cluster mode.
        slot: Option<u16>,
        /// The command only reads, so a replica may serve it.
        read_only: bool,
    },
    /// One particular node: the primary of `shard`, or its replica number
    /// `replica` (fan-out to every node uses this).
    Node {
        /// The shard.
        shard: u32,
        /// Which replica, or `None` for the primary.
        replica: Option<u32>,
    },
    /// No key and no policy: any primary will do.
    Any {
        /// The command only reads.
        read_only: bool,
    },
    /// Every primary, replies combined by the policy.
    AllShards(ResponsePolicy),
    /// Every node, replicas included, replies combined by the policy.
    AllNodes(ResponsePolicy),
    /// Keys in more than one slot.
    MultiSlot,
}

impl Route {
    /// True when one node answers the request.
    pub fn is_single(&self) -> bool {
        matches!(self, Route::Shard { .. } | Route::Node { .. } | Route::Any { .. })
    }
}

/// Decides where `request` goes. `spec` is the command's entry in the
/// table (`None` for a command the table does not know, which goes to any
/// node so the server can answer with its own error).
///
/// # Errors
/// [`Error::NoBackend`] before the topology is known;
/// [`Error::SlotUnassigned`] when no shard owns the keys' slot.
pub fn select(request: &Request, spec: Option<&CommandSpec>, topology: &Topology) -> Result<Route, Error> {
    if topology.is_empty() {
        return Err(Error::NoBackend);
    }
    let Some(spec) = spec else {
        return Ok(Route::Any { read_only: false });
    };
    if topology.mode() != Mode::Cluster {
        return Ok(Route::Shard {
            shard: 0,
            slot: None,
            read_only: spec.is_read_only(),
        });
    }
    select_in_cluster(request, spec, topology)
}

/// [`select`] for a known command on a cluster: by the slot of its keys,
/// or by its request policy when it has none. Kept out of line, so that
/// the other cases stay small where `select` is inlined.
#[inline(never)]
fn select_in_cluster(request: &Request, spec: &CommandSpec, topology: &Topology) -> Result<Route, Error> {
    let read_only = spec.is_read_only();
    if !spec.arity_ok(request.len()) {
        // The server answers with its own arity error.
        return Ok(Route::Any { read_only });
    }
    match common_slot(spec, request.args()) {
        Slots::None => Ok(match spec.request_policy {
            RequestPolicy::AllShards => Route::AllShards(spec.response_policy),
            RequestPolicy::AllNodes => Route::AllNodes(spec.response_policy),
            RequestPolicy::Home => Route::Shard {
                shard: 0,
                slot: None,
                read_only,
            },
            // SCAN's cursor belongs to one node: sending the next call to
            // another node would return wrong keys, so refuse instead until
            // the proxy keeps a cluster-wide cursor.
            RequestPolicy::Special => return Err(Error::NotSupportedOnCluster(spec.name.clone())),
            _ => Route::Any { read_only },
        }),
        Slots::One(slot) => match topology.shard_index_for_slot(slot) {
            Some(shard) => Ok(Route::Shard {
                shard: shard as u32,
                slot: Some(slot),
                read_only,
            }),
            None => Err(Error::SlotUnassigned(slot)),
        },
        Slots::Many => Ok(Route::MultiSlot),
    }
}

/// How the keys of a request spread over slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slots {
    /// No keys.
    None,
    /// All keys in this slot.
    One(u16),
    /// Keys in different slots.
    Many,
}

/// The slot shared by every key of the request.
pub fn common_slot(spec: &CommandSpec, args: Args<'_>) -> Slots {
    let mut slots = Slots::None;
    for_each_key(spec, args, |position| {
        let slot = key_slot(&args[position]);
        slots = match slots {
            Slots::None => Slots::One(slot),
            Slots::One(s) if s == slot => Slots::One(s),
            _ => Slots::Many,
        };
    });
    slots
}

#[cfg(test)]
mod tests;
