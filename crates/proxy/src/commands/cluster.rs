//! CLUSTER, for cluster-aware clients: in front of a cluster the proxy
//! presents itself as a one-node cluster that owns every slot, at the
//! address the client connected to, so a cluster client library pointed at
//! the proxy sends everything to the proxy. CLUSTER KEYSLOT is answered
//! locally; other subcommands (COUNTKEYSINSLOT, administration) go to a
//! backend. In front of a standalone server or a primary with replicas,
//! CLUSTER goes to the backend, which answers that cluster support is off.

use std::fmt::Write as _;

use bytes::Bytes;
use resp::{Frame, Request};
use topology::Mode;

use super::text::verbatim;
use crate::context::{SessionState, Shared};
use crate::edge::wrong_arity;

/// Every slot.
const LAST_SLOT: i64 = 16383;

/// `CLUSTER <subcommand>`: `None` sends it to a backend.
pub fn cluster(request: &Request, state: &SessionState, shared: &Shared) -> Option<Frame> {
    if shared.stack_of(state.group).router.topology().current().mode() != Mode::Cluster {
        return None;
    }
    let sub = request.arg(1)?.to_ascii_lowercase();
    let argc = request.len();
    let addr = state.info.laddr;
    let ip = addr.ip().to_string();
    let port = i64::from(addr.port());
    let id = node_id(&addr.to_string(), "node");
    Some(match sub.as_slice() {
        b"keyslot" if argc == 3 => Frame::Integer(i64::from(router::slot::key_slot(
            &request.args().bytes(2).unwrap_or_default(),
        ))),
        b"keyslot" => wrong_arity("cluster|keyslot"),
        b"info" => verbatim(info()),
        b"myid" => Frame::bulk(id),
        b"myshardid" => Frame::bulk(node_id(&addr.to_string(), "shard")),
        b"slots" => Frame::Array(vec![Frame::Array(vec![
            Frame::Integer(0),
            Frame::Integer(LAST_SLOT),
            Frame::Array(vec![
                Frame::bulk(ip),
                Frame::Integer(port),
                Frame::bulk(id),
                Frame::Map(Vec::new()),
            ]),
        ])]),
        b"shards" => Frame::Array(vec![Frame::Map(vec![
            (
                Frame::bulk("slots"),
                Frame::Array(vec![Frame::Integer(0), Frame::Integer(LAST_SLOT)]),
            ),
            (
                Frame::bulk("nodes"),
                Frame::Array(vec![Frame::Map(vec![
                    (Frame::bulk("id"), Frame::bulk(id)),
                    (Frame::bulk("port"), Frame::Integer(port)),
                    (Frame::bulk("ip"), Frame::bulk(ip.clone())),
                    (Frame::bulk("endpoint"), Frame::bulk(ip)),
                    (Frame::bulk("role"), Frame::bulk("master")),
                    (Frame::bulk("replication-offset"), Frame::Integer(0)),
                    (Frame::bulk("health"), Frame::bulk("online")),
                ])]),
            ),
        ])]),
        b"nodes" => verbatim(format!(
            "{} {addr}@0 myself,master - 0 0 1 connected 0-{LAST_SLOT}\n",
            String::from_utf8_lossy(&id)
        )),
        _ => return None,
    })
}

/// The proxy's view: one healthy node with every slot.
fn info() -> String {
    let mut out = String::new();
    for (field, value) in [
        ("cluster_state", "ok"),
        ("cluster_slots_assigned", "16384"),
        ("cluster_slots_ok", "16384"),
        ("cluster_slots_pfail", "0"),
        ("cluster_slots_fail", "0"),
        ("cluster_known_nodes", "1"),
        ("cluster_size", "1"),
        ("cluster_current_epoch", "1"),
        ("cluster_my_epoch", "1"),
        ("cluster_stats_messages_sent", "0"),
        ("cluster_stats_messages_received", "0"),
        ("total_cluster_links_buffer_limit_exceeded", "0"),
    ] {
        let _ = write!(out, "{field}:{value}\r\n");
    }
    out
}

/// A stable 40-hex-digit id for this proxy address (node or shard id).
fn node_id(addr: &str, kind: &str) -> Bytes {
    // FNV-1a over the address, three times with different seeds.
    let hash = |seed: u8| {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in [seed].iter().chain(kind.as_bytes()).chain(addr.as_bytes()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    Bytes::from(format!("{:016x}{:016x}{:08x}", hash(1), hash(2), hash(3) as u32))
}
