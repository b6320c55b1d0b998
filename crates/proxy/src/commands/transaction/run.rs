//! EXEC: the queued commands, one block per slot (and per node for
//! commands that run on every node), and the replies put back in the
//! client's order.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::future::{self, BoxFuture};
use pool::Endpoint;
use resp::{Frame, Request};
use router::Reply;
use topology::TopologyHandle;

use super::redirect::{self, Block};
use super::Local;
use crate::context::{SessionState, Shared};
use crate::transaction::{unwatch_later, Queue, Reach};
use crate::{door, edge};

const MULTI: &[u8] = b"*1\r\n$5\r\nMULTI\r\n";
const EXEC: &[u8] = b"*1\r\n$4\r\nEXEC\r\n";

/// `EXEC`
pub fn exec(request: &Request, state: &mut SessionState, shared: &Shared) -> Local {
    if request.len() != 1 {
        return Local::Reply(edge::wrong_arity("exec"));
    }
    let shown = ShownExec::new(request, state, shared);
    let Some(queue) = state.transaction.queue.take() else {
        ShownExec::show(shown, &[]);
        return Local::Reply(Frame::error("ERR EXEC without MULTI"));
    };
    let watch = state.transaction.watch.take();
    if queue.dirty {
        if let Some(watch) = watch {
            unwatch_later(watch.connection);
        }
        ShownExec::show(shown, &[]);
        return Local::Reply(Frame::error(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    let ran: Vec<Request> = match shown {
        Some(_) => queue
            .commands
            .iter()
            .map(|queued| queued.client.clone())
            .collect(),
        None => Vec::new(),
    };
    if let Some(watch) = watch {
        // Queueing kept a watched transaction on the watched node.
        let (block, skip) = one_block(&queue);
        return Local::Later(Box::pin(async move {
            let reply = watch.connection.send(&block, skip).await;
            // EXEC cleared the watch on the backend: the connection is clean.
            let reply = reply.map_err(router::Error::Backend)?;
            watch.connection.release();
            // A nil EXEC (a watched key changed) ran nothing.
            let aborted = reply.starts_with(b"*-1") || reply.starts_with(b"_");
            ShownExec::show(shown, if aborted { &[] } else { &ran });
            Ok(Reply::Raw(reply))
        }));
    }
    let plan = match Plan::new(&queue, state, shared) {
        Ok(plan) => plan,
        Err(error) => return Local::Reply(edge::reply_for(&error)),
    };
    ShownExec::show(shown, &ran);
    let router = &shared.stack_of(state.group).router;
    Local::Later(plan.run(router.pool().clone(), state.affinity, router.topology().clone()))
}

/// What EXEC shows to the clients in MONITOR once it knows what ran: the
/// commands it ran, then itself, as Valkey shows a transaction.
struct ShownExec {
    monitors: Arc<crate::monitor::Monitors>,
    exec: Request,
    db: u32,
    peer: String,
    tenant: u16,
}

impl ShownExec {
    /// `None` when no client monitors.
    fn new(exec: &Request, state: &SessionState, shared: &Shared) -> Option<ShownExec> {
        shared.monitors.active().then(|| ShownExec {
            monitors: shared.monitors.clone(),
            exec: exec.clone(),
            db: state.client_db(),
            peer: state.info.addr.to_string(),
            tenant: state.tenant,
        })
    }

    /// Shows `ran` and EXEC.
    fn show(shown: Option<ShownExec>, ran: &[Request]) {
        if let Some(shown) = shown {
            let lines = ran.iter().chain(std::iter::once(&shown.exec));
            shown.monitors.feed(lines, shown.db, &shown.peer, shown.tenant);
        }
    }
}

/// MULTI, every queued command and EXEC, for a transaction on one node,
/// with the count of replies before EXEC's.
fn one_block(queue: &Queue) -> (Bytes, u32) {
    let mut block = BytesMut::from(MULTI);
    for queued in &queue.commands {
        block.extend_from_slice(queued.request.raw());
    }
    block.extend_from_slice(EXEC);
    (block.freeze(), queue.commands.len() as u32 + 1)
}

/// Where EXEC sends the queued commands.
struct Plan {
    /// One block per node.
    parts: Vec<Part>,
    /// For each queued command, where its replies are: (part, index in
    /// that part's EXEC reply), one per node it ran on.
    places: Vec<Vec<(usize, usize)>>,
    /// For each queued command that ran on several nodes, how its replies
    /// merge.
    merges: Vec<Option<(router::command::ResponsePolicy, Arc<router::CommandSpec>)>>,
}

/// One block of a transaction: one slot's commands on its node, or the
/// share of a node that holds none of the transaction's keys.
struct Part {
    endpoint: Endpoint,
    /// The slot of the block's keys; keyless commands join the block of
    /// the transaction's first slot on its node, or a block of their own
    /// (`None`) on the other nodes.
    slot: Option<u16>,
    block: BytesMut,
    commands: u32,
}

impl Plan {
    /// Places every queued command on its nodes, as the topology is now.
    fn new(queue: &Queue, state: &SessionState, shared: &Shared) -> Result<Plan, router::Error> {
        let topology = shared.stack_of(state.group).router.topology().current();
        let home = match queue.slot {
            Some(slot) => topology
                .shard_for_slot(slot)
                .ok_or(router::Error::SlotUnassigned(slot))?,
            None => topology.shards().first().ok_or(router::Error::NoBackend)?,
        };
        let endpoint = |addr: &Arc<str>| door::endpoint(addr, state, shared);
        let mut plan = Plan {
            parts: Vec::new(),
            places: Vec::with_capacity(queue.commands.len()),
            merges: Vec::with_capacity(queue.commands.len()),
        };
        for queued in &queue.commands {
            let targets: Vec<&Arc<str>> = match (queued.reach, queued.slot) {
                (Reach::Home, Some(slot)) => vec![
                    &topology
                        .shard_for_slot(slot)
                        .ok_or(router::Error::SlotUnassigned(slot))?
                        .primary,
                ],
                (Reach::Home, None) => vec![&home.primary],
                (Reach::Every { replicas, .. }, _) => topology
                    .shards()
                    .iter()
                    .flat_map(|shard| {
                        let replicas = if replicas { &shard.replicas[..] } else { &[] };
                        std::iter::once(&shard.primary).chain(replicas)
                    })
                    .collect(),
            };
            let places = targets
                .into_iter()
                .map(|addr| {
                    let slot = match queued.slot {
                        Some(slot) => Some(slot),
                        None if *addr == home.primary => queue.slot,
                        None => None,
                    };
                    plan.add(endpoint(addr), slot, &queued.request)
                })
                .collect::<Vec<_>>();
            plan.merges.push(match queued.reach {
                Reach::Every { policy, .. } if places.len() > 1 => Some((policy, queued.spec.clone())),
                _ => None,
            });
            plan.places.push(places);
        }
        if plan.parts.is_empty() {
            // An empty transaction still runs, on the home node.
            plan.parts.push(Part {
                endpoint: endpoint(&home.primary),
                slot: queue.slot,
                block: BytesMut::from(MULTI),
                commands: 0,
            });
        }
        Ok(plan)
    }

    /// Adds `request` to the block of `slot` on `endpoint`'s node; where
    /// its reply will be.
    fn add(&mut self, endpoint: Endpoint, slot: Option<u16>, request: &Request) -> (usize, usize) {
        let index = match self
            .parts
            .iter()
            .position(|part| part.endpoint.addr == endpoint.addr && part.slot == slot)
        {
            Some(index) => index,
            None => {
                self.parts.push(Part {
                    endpoint,
                    slot,
                    block: BytesMut::from(MULTI),
                    commands: 0,
                });
                self.parts.len() - 1
            }
        };
        let part = &mut self.parts[index];
        part.block.extend_from_slice(request.raw());
        part.commands += 1;
        (index, part.commands as usize - 1)
    }

    /// Sends every node its block on the client's shared connection to it
    /// and answers as one server would.
    fn run(
        self,
        pool: pool::Pool,
        affinity: u64,
        topology: Arc<TopologyHandle>,
    ) -> BoxFuture<'static, Result<Reply, router::Error>> {
        let mut blocks: Vec<Block> = self
            .parts
            .into_iter()
            .map(|mut part| {
                part.block.extend_from_slice(EXEC);
                Block {
                    endpoint: part.endpoint,
                    slot: part.slot,
                    bytes: part.block.freeze(),
                    // Replies to skip: MULTI's +OK and one +QUEUED per command.
                    skip: part.commands + 1,
                }
            })
            .collect();
        let (places, merges) = (self.places, self.merges);
        Box::pin(async move {
            let sends = blocks.iter().map(|block| block.send(&pool, affinity));
            let mut replies = future::join_all(sends).await;
            redirect::follow(&mut blocks, &mut replies, &pool, affinity, &topology).await;
            if replies.len() == 1 {
                // One node: its reply is the answer, byte for byte.
                return Ok(Reply::Raw(replies.remove(0)?));
            }
            // Several nodes: one that failed must not hide the parts that
            // ran elsewhere, so its failure becomes its commands' replies.
            let parts: Vec<Frame> = replies
                .into_iter()
                .map(|reply| match reply {
                    Ok(raw) => Frame::parse_complete(&raw)
                        .unwrap_or_else(|e| edge::reply_for(&router::Error::InvalidReply(e.to_string()))),
                    Err(error) => edge::reply_for(&error),
                })
                .collect();
            Ok(Reply::Frame(merge(&parts, &places, &merges)))
        })
    }
}

/// EXEC's reply for the client from the nodes' EXEC replies: each queued
/// command's reply from its node, or its nodes' replies merged. A node
/// whose part did not run (its EXEC answered an error, or its connection
/// failed) gives that error for each of its commands, so the client sees
/// which did not run and which did.
fn merge(
    parts: &[Frame],
    places: &[Vec<(usize, usize)>],
    merges: &[Option<(router::command::ResponsePolicy, Arc<router::CommandSpec>)>],
) -> Frame {
    let reply_at = |(part, index): (usize, usize)| match &parts[part] {
        Frame::Array(items) => items.get(index).cloned().unwrap_or(Frame::Null),
        other => other.clone(),
    };
    let items = places
        .iter()
        .zip(merges)
        .map(|(places, merge)| match merge {
            Some((policy, spec)) => {
                let replies = places.iter().copied().map(reply_at).collect();
                aggregate::merge::for_command(*policy, Some(spec), replies)
            }
            None => places.first().copied().map(reply_at).unwrap_or(Frame::Null),
        })
        .collect();
    Frame::Array(items)
}
