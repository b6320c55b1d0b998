//! Building a [`Topology`] from seed nodes.

use std::sync::Arc;

use resp::Frame;

use crate::parse::{self, Role};
use crate::{Error, Mode, Probe, Shard, Topology};

/// What discovery starts from.
#[derive(Clone, Debug, Default)]
pub struct DiscoveryConfig {
    /// The mode the operator configured; `None` finds out (`auto`).
    pub mode: Option<Mode>,
    /// `host:port` of the nodes to ask first.
    pub seeds: Vec<String>,
}

/// Asks the seeds (in order, until one answers) what the backend looks like.
///
/// # Errors
/// No seed answered, or the configured mode contradicts the backend.
pub async fn discover(config: &DiscoveryConfig, probe: &dyn Probe) -> Result<Topology, Error> {
    let mut last_error = Error::NoSeed("no seed configured".into());
    for seed in &config.seeds {
        match discover_from(seed, config.mode, &config.seeds, probe).await {
            Ok(topology) => return Ok(topology),
            Err(error @ Error::ModeMismatch { .. }) => return Err(error),
            Err(error) => last_error = error,
        }
    }
    Err(match last_error {
        Error::NoSeed(_) => last_error,
        other => Error::NoSeed(other.to_string()),
    })
}

async fn discover_from(
    seed: &str,
    configured: Option<Mode>,
    seeds: &[String],
    probe: &dyn Probe,
) -> Result<Topology, Error> {
    if configured == Some(Mode::Standalone) {
        let databases = databases(seed, "databases", probe).await;
        let shard = Shard {
            primary: seed.into(),
            replicas: Vec::new(),
        };
        return Ok(Topology::single(Mode::Standalone, shard, databases));
    }
    let info = text_of(seed, "INFO", probe.query(seed, &["INFO", "cluster"]).await?)?;
    let clustered = info.lines().any(|line| line.trim() == "cluster_enabled:1");
    let mismatch = |actual: Mode| Error::ModeMismatch {
        configured: configured.map(|m| m.to_string()).unwrap_or_default(),
        actual: actual.to_string(),
        addr: seed.to_string(),
    };
    match (configured, clustered) {
        (Some(Mode::Cluster), false) => Err(mismatch(Mode::Standalone)),
        (Some(Mode::Replicated), true) => Err(mismatch(Mode::Cluster)),
        (_, true) => cluster(seed, probe).await,
        (_, false) => replicated(seed, configured, seeds, probe).await,
    }
}

/// CLUSTER SHARDS, or CLUSTER SLOTS on servers without it.
async fn cluster(seed: &str, probe: &dyn Probe) -> Result<Topology, Error> {
    let shards = probe.query(seed, &["CLUSTER", "SHARDS"]).await?;
    let ranges = match shards {
        Frame::Error(_) => {
            let slots = probe.query(seed, &["CLUSTER", "SLOTS"]).await?;
            refuse_error(seed, "CLUSTER SLOTS", &slots)?;
            parse::cluster_slots(&slots, seed).ok_or_else(|| unexpected(seed, "CLUSTER SLOTS", &slots))?
        }
        shards => {
            parse::cluster_shards(&shards, seed).ok_or_else(|| unexpected(seed, "CLUSTER SHARDS", &shards))?
        }
    };
    let databases = databases(seed, "cluster-databases", probe).await;
    let node_timeout = match probe
        .query(seed, &["CONFIG", "GET", "cluster-node-timeout"])
        .await
    {
        Ok(reply) => parse::config_number(&reply)
            .and_then(|millis| u64::try_from(millis).ok())
            .filter(|millis| *millis > 0)
            .map(std::time::Duration::from_millis),
        Err(_) => None,
    };
    Ok(Topology::cluster(ranges, databases).with_node_timeout(node_timeout))
}

/// ROLE on the seed: a replica points to its primary, a primary lists its
/// replicas. Seeds that are replicas of the same primary are added too.
async fn replicated(
    seed: &str,
    configured: Option<Mode>,
    seeds: &[String],
    probe: &dyn Probe,
) -> Result<Topology, Error> {
    let reply = probe.query(seed, &["ROLE"]).await?;
    refuse_error(seed, "ROLE", &reply)?;
    let primary = match parse::role(&reply).ok_or_else(|| unexpected(seed, "ROLE", &reply))? {
        Role::Primary { .. } => seed.to_string(),
        Role::Replica { primary } => primary,
        Role::Other(kind) => {
            return Err(Error::Unexpected {
                addr: seed.to_string(),
                command: "ROLE".into(),
                detail: format!("a {kind} node cannot be a backend"),
            })
        }
    };
    let reply = probe.query(&primary, &["ROLE"]).await?;
    let Some(Role::Primary { replicas }) = parse::role(&reply) else {
        return Err(unexpected(&primary, "ROLE", &reply));
    };
    let mut all: Vec<Arc<str>> = replicas.into_iter().map(Arc::from).collect();
    for other in seeds.iter().filter(|s| **s != primary) {
        if !all.iter().any(|r| **r == **other) {
            if let Ok(reply) = probe.query(other, &["ROLE"]).await {
                if matches!(parse::role(&reply), Some(Role::Replica { primary: p }) if p == primary) {
                    all.push(other.as_str().into());
                }
            }
        }
    }
    let mode = match configured {
        Some(mode) => mode,
        None if all.is_empty() => Mode::Standalone,
        None => Mode::Replicated,
    };
    let databases = databases(&primary, "databases", probe).await;
    let shard = Shard {
        primary: primary.into(),
        replicas: all,
    };
    Ok(Topology::single(mode, shard, databases))
}

/// The number of databases a node offers; 1 when it does not say.
async fn databases(addr: &str, parameter: &str, probe: &dyn Probe) -> u32 {
    match probe.query(addr, &["CONFIG", "GET", parameter]).await {
        Ok(reply) => parse::config_number(&reply)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1)
            .max(1),
        Err(_) => 1,
    }
}

fn text_of(addr: &str, command: &str, reply: Frame) -> Result<String, Error> {
    refuse_error(addr, command, &reply)?;
    match reply.as_bytes() {
        Some(bytes) => Ok(String::from_utf8_lossy(bytes).into_owned()),
        None => Err(unexpected(addr, command, &reply)),
    }
}

fn refuse_error(addr: &str, command: &str, reply: &Frame) -> Result<(), Error> {
    if let Frame::Error(text) | Frame::BulkError(text) = reply {
        return Err(Error::Refused {
            addr: addr.to_string(),
            command: command.to_string(),
            reply: String::from_utf8_lossy(text).into_owned(),
        });
    }
    Ok(())
}

fn unexpected(addr: &str, command: &str, reply: &Frame) -> Error {
    let mut detail = format!("{reply:?}");
    detail.truncate(200);
    Error::Unexpected {
        addr: addr.to_string(),
        command: command.to_string(),
        detail,
    }
}
