//! Reading the replies discovery relies on: ROLE, CLUSTER SHARDS,
//! CLUSTER SLOTS, CONFIG GET, and CLUSTER NODES for a slot's migration. Each function takes the node the reply came
//! from, to fill in addresses a node reports as empty (a node that has not
//! learned its own IP yet).

use std::sync::Arc;

use resp::frame::field;
use resp::Frame;

use crate::Shard;

/// What a node said about itself in ROLE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// A primary and the replicas it lists.
    Primary {
        /// `host:port` of each connected replica.
        replicas: Vec<String>,
    },
    /// A replica and the primary it follows.
    Replica {
        /// `host:port` of its primary.
        primary: String,
    },
    /// Anything else (a Sentinel).
    Other(String),
}

/// Parses a ROLE reply.
pub fn role(reply: &Frame) -> Option<Role> {
    let items = reply.as_array()?;
    let kind = text(items.first()?)?;
    match kind.as_str() {
        "master" => {
            let replicas = items
                .get(2)
                .and_then(Frame::as_array)
                .unwrap_or_default()
                .iter()
                .filter_map(|entry| {
                    let entry = entry.as_array()?;
                    Some(format!(
                        "{}:{}",
                        text(entry.first()?)?,
                        entry.get(1)?.as_integer()?
                    ))
                })
                .collect();
            Some(Role::Primary { replicas })
        }
        "slave" | "replica" => Some(Role::Replica {
            primary: format!("{}:{}", text(items.get(1)?)?, items.get(2)?.as_integer()?),
        }),
        other => Some(Role::Other(other.to_string())),
    }
}

/// Parses CLUSTER SHARDS into `(first, last, shard)` slot ranges. Replicas
/// reported `failed` are left out (a `loading` replica is kept: Valkey also
/// says `loading` for a replica that has replicated nothing yet); so are
/// shards that own no slot.
pub fn cluster_shards(reply: &Frame, queried: &str) -> Option<Vec<(u16, u16, Shard)>> {
    let mut ranges = Vec::new();
    for entry in reply.as_array()? {
        let fields = entry.clone().into_pairs()?;
        let slots = field(&fields, "slots")?.as_array()?.to_vec();
        let nodes = field(&fields, "nodes")?.as_array()?.to_vec();
        let mut primary = None;
        let mut replicas = Vec::new();
        for node in nodes {
            let node = node.into_pairs()?;
            let host = ["endpoint", "ip"]
                .iter()
                .filter_map(|name| field(&node, name).and_then(text))
                .find(|h| !h.is_empty() && h != "?")
                .unwrap_or_else(|| host_of(queried).to_string());
            let addr: Arc<str> = format!("{host}:{}", field(&node, "port")?.as_integer()?).into();
            let role = field(&node, "role").and_then(text).unwrap_or_default();
            let health = field(&node, "health").and_then(text).unwrap_or_default();
            if role == "master" {
                primary = Some(addr);
            } else if health != "failed" {
                replicas.push(addr);
            }
        }
        let Some(primary) = primary else { continue };
        let shard = Shard { primary, replicas };
        for pair in slots.chunks(2) {
            let (Some(first), Some(last)) = (pair[0].as_integer(), pair.get(1).and_then(Frame::as_integer))
            else {
                continue;
            };
            ranges.push((
                u16::try_from(first).ok()?,
                u16::try_from(last).ok()?,
                shard.clone(),
            ));
        }
    }
    Some(ranges)
}

/// Parses CLUSTER SLOTS into `(first, last, shard)` slot ranges.
pub fn cluster_slots(reply: &Frame, queried: &str) -> Option<Vec<(u16, u16, Shard)>> {
    let mut ranges = Vec::new();
    for entry in reply.as_array()? {
        let items = entry.as_array()?;
        let first = u16::try_from(items.first()?.as_integer()?).ok()?;
        let last = u16::try_from(items.get(1)?.as_integer()?).ok()?;
        let mut addrs = items[2..].iter().filter_map(|node| {
            let node = node.as_array()?;
            let host = text(node.first()?).filter(|h| !h.is_empty() && h != "?");
            let host = host.unwrap_or_else(|| host_of(queried).to_string());
            Some(Arc::<str>::from(format!("{host}:{}", node.get(1)?.as_integer()?)))
        });
        let Some(primary) = addrs.next() else { continue };
        ranges.push((
            first,
            last,
            Shard {
                primary,
                replicas: addrs.collect(),
            },
        ));
    }
    Some(ranges)
}

/// The value of a single-parameter CONFIG GET reply, as a number.
pub fn config_number(reply: &Frame) -> Option<i64> {
    match reply {
        Frame::Map(pairs) => pairs.first()?.1.as_integer(),
        other => other.as_array()?.get(1)?.as_integer(),
    }
}

/// Where `slot` is being migrated to (`host:port`), from the `CLUSTER
/// NODES` text of the node that owns it: its own line (flag `myself`)
/// shows `[slot->-target-id]` while the slot is `MIGRATING`, as set by
/// `CLUSTER SETSLOT` during a resharding. `None` when it is not.
pub fn migration_target(nodes: &str, slot: u16, queried: &str) -> Option<String> {
    let marker = format!("[{slot}->-");
    let myself = nodes.lines().find(|line| {
        line.split(' ')
            .nth(2)
            .is_some_and(|flags| flags.split(',').any(|f| f == "myself"))
    })?;
    let target_id = myself
        .split(' ')
        .skip(8)
        .find_map(|field| field.strip_prefix(marker.as_str())?.strip_suffix(']'))?;
    let target = nodes
        .lines()
        .find(|line| line.split(' ').next() == Some(target_id))?;
    let addr = target.split(' ').nth(1)?;
    let addr = addr.split(['@', ',']).next()?;
    let (host, port) = addr.rsplit_once(':')?;
    let host = if host.is_empty() { host_of(queried) } else { host };
    Some(format!("{host}:{port}"))
}

fn text(frame: &Frame) -> Option<String> {
    Some(String::from_utf8_lossy(frame.as_bytes()?).into_owned())
}

fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(host, _)| host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn parse(raw: &'static [u8]) -> Frame {
        Frame::parse_complete(&Bytes::from_static(raw)).unwrap()
    }

    #[test]
    fn role_of_primary_and_replica() {
        let primary =
            parse(b"*3\r\n$6\r\nmaster\r\n:10\r\n*1\r\n*3\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n$2\r\n10\r\n");
        assert_eq!(
            role(&primary),
            Some(Role::Primary {
                replicas: vec!["127.0.0.1:6380".into()]
            })
        );
        let replica = parse(b"*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:10\r\n");
        assert_eq!(
            role(&replica),
            Some(Role::Replica {
                primary: "127.0.0.1:6379".into()
            })
        );
    }

    #[test]
    fn cluster_slots_with_empty_host() {
        let reply = parse(b"*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$0\r\n\r\n:7001\r\n$2\r\nid\r\n");
        let ranges = cluster_slots(&reply, "10.0.0.1:7001").unwrap();
        assert_eq!(ranges[0].0, 0);
        assert_eq!(ranges[0].1, 16383);
        assert_eq!(&*ranges[0].2.primary, "10.0.0.1:7001");
    }

    #[test]
    fn migration_target_from_the_owners_own_line() {
        let nodes = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460 [5000->-b2] [5001-<c3]
b2 :7002@17002,host-b master - 0 1 2 connected 5461-10922
c3 127.0.0.1:7003@17003 master - 0 1 3 connected 10923-16383
";
        assert_eq!(
            migration_target(nodes, 5000, "10.0.0.9:7001").as_deref(),
            Some("10.0.0.9:7002")
        );
        // Importing, or not moving at all: no target.
        assert_eq!(migration_target(nodes, 5001, "10.0.0.9:7001"), None);
        assert_eq!(migration_target(nodes, 42, "10.0.0.9:7001"), None);
    }
}
