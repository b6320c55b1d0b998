//! A transaction's block that its node refused whole because the block's
//! slot is moving, sent where the slot now is: to its new owner after a
//! MOVED, or with `ASKING` to the node it is being migrated to (what a
//! node answers ASK for while `CLUSTER SETSLOT ... MIGRATING`). Only a
//! block whose EXEC ran nothing is sent again, so nothing runs twice.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pool::Endpoint;
use topology::TopologyHandle;

const ASKING: &[u8] = b"*1\r\n$6\r\nASKING\r\n";
const CLUSTER_NODES: &[u8] = b"*2\r\n$7\r\nCLUSTER\r\n$5\r\nNODES\r\n";

/// Rounds of sending refused blocks again.
const ROUNDS: usize = 5;
/// The pause before the second round, doubled for each one after (a slot
/// whose keys are half moved answers TRYAGAIN until they are all moved).
const FIRST_PAUSE: Duration = Duration::from_millis(5);

/// One block as sent: MULTI, its commands, EXEC.
pub(super) struct Block {
    pub(super) endpoint: Endpoint,
    /// The slot of the block's keys; `None` for a block without keys,
    /// which no move can refuse.
    pub(super) slot: Option<u16>,
    pub(super) bytes: Bytes,
    /// Replies before EXEC's: MULTI's +OK and one +QUEUED per command.
    pub(super) skip: u32,
}

impl Block {
    /// Sends the block on the client's shared connection to its node; its
    /// EXEC's reply.
    pub(super) fn send(
        &self,
        pool: &pool::Pool,
        affinity: u64,
    ) -> impl std::future::Future<Output = Result<Bytes, router::Error>> + Send + 'static {
        let sent = pool
            .shared_for(&self.endpoint, affinity)
            .map(|connection| connection.send(&self.bytes, self.skip));
        async move {
            sent.map_err(router::Error::Backend)?
                .await
                .map_err(router::Error::Backend)
        }
    }

    /// True when the block starts with `ASKING`.
    fn asks(&self) -> bool {
        self.bytes.starts_with(ASKING)
    }

    /// The block for the slot's owner at `owner`: without `ASKING`.
    fn to_owner(&self, owner: Arc<str>) -> Block {
        let asks = self.asks();
        Block {
            endpoint: Endpoint {
                addr: owner,
                ..self.endpoint.clone()
            },
            slot: self.slot,
            bytes: if asks {
                self.bytes.slice(ASKING.len()..)
            } else {
                self.bytes.clone()
            },
            skip: self.skip - u32::from(asks),
        }
    }

    /// The block for the node importing its slot, at `target`: `ASKING`
    /// first, which holds for the whole MULTI ... EXEC that follows.
    fn asking(&self, target: String) -> Block {
        let owners = self.to_owner(target.into());
        let mut bytes = BytesMut::from(ASKING);
        bytes.extend_from_slice(&owners.bytes);
        Block {
            bytes: bytes.freeze(),
            skip: owners.skip + 1,
            ..owners
        }
    }
}

/// True for an EXEC reply that says the transaction ran nothing because
/// of where its slot is: EXECABORT (a queued command was answered MOVED,
/// ASK or TRYAGAIN), or EXEC itself redirected or told to try again.
fn refused_for_its_slot(reply: &[u8]) -> bool {
    [&b"-EXECABORT"[..], b"-MOVED ", b"-ASK ", b"-TRYAGAIN"]
        .iter()
        .any(|prefix| reply.starts_with(prefix))
}

/// Sends again each block whose node refused it whole while its slot
/// moves, where the slot is now: the topology is fetched anew, a slot with
/// a new owner goes there, and a slot its owner is migrating goes with
/// `ASKING` to the node importing it (asked of the owner with `CLUSTER
/// NODES`). A block refused by a node that still owns its slot and is not
/// migrating it keeps its reply: another error refused it.
pub(super) async fn follow(
    blocks: &mut [Block],
    replies: &mut [Result<Bytes, router::Error>],
    pool: &pool::Pool,
    affinity: u64,
    topology: &TopologyHandle,
) {
    let mut pause = FIRST_PAUSE;
    for round in 0..ROUNDS {
        let refused: Vec<usize> = (0..blocks.len())
            .filter(|&i| {
                blocks[i].slot.is_some() && replies[i].as_ref().is_ok_and(|reply| refused_for_its_slot(reply))
            })
            .collect();
        if refused.is_empty() {
            return;
        }
        if round > 0 {
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
        let Ok(current) = topology.refresh_now().await else {
            return;
        };
        let mut resent = false;
        for i in refused {
            let Some(slot) = blocks[i].slot else { continue };
            let Some(owner) = current.shard_for_slot(slot).map(|shard| shard.primary.clone()) else {
                continue;
            };
            let owner_block = blocks[i].to_owner(owner);
            let next = match migration_target(pool, &owner_block.endpoint, slot).await {
                Some(target) => owner_block.asking(target),
                None if owner_block.endpoint.addr != blocks[i].endpoint.addr => owner_block,
                None => continue,
            };
            blocks[i] = next;
            replies[i] = blocks[i].send(pool, affinity).await;
            resent = true;
        }
        if !resent {
            return;
        }
    }
}

/// The node `slot` is being migrated to, if its owner at `owner` says it
/// is migrating it.
async fn migration_target(pool: &pool::Pool, owner: &Endpoint, slot: u16) -> Option<String> {
    let reply = pool.call(owner, Bytes::from_static(CLUSTER_NODES)).await.ok()?;
    let frame = resp::Frame::parse_complete(&reply).ok()?;
    let text = std::str::from_utf8(frame.as_bytes()?).ok()?;
    topology::parse::migration_target(text, slot, &owner.addr)
}
