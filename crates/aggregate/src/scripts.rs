//! Scripts the proxy has seen, so that EVALSHA survives a node that does
//! not know the script (restarted, added to the cluster, or a new primary
//! after a failover): on NOSCRIPT the proxy loads the script on every node
//! and runs EVALSHA once more.
//!
//! The cache learns a script from SCRIPT LOAD and from EVAL / EVAL_RO
//! through the proxy (keyed by the SHA1 of the body, as Valkey keys it),
//! and forgets them all on SCRIPT FLUSH. It
//! keeps at most [`MAX_SCRIPTS`] scripts; when full it forgets them all and
//! starts over (a client whose script was forgotten gets the server's
//! NOSCRIPT, as it would without a proxy).
//!
//! The retry runs after the first attempt failed, so a pipelined request
//! sent after the EVALSHA may run before it in that one case.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use router::{Command, Error, Reply};
use tower::Service;

use crate::steps::{arg, Steps};

/// Most scripts remembered.
pub const MAX_SCRIPTS: usize = 10_000;

/// Script bodies by lower-case SHA1 hex. Cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct ScriptCache {
    bodies: Arc<Mutex<HashMap<Bytes, Bytes>>>,
}

impl ScriptCache {
    /// Remembers `body`.
    pub fn remember(&self, body: &Bytes) {
        let sha = Bytes::from(sha1_smol::Sha1::from(&body[..]).digest().to_string());
        let mut bodies = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
        if bodies.len() >= MAX_SCRIPTS && !bodies.contains_key(&sha) {
            bodies.clear();
        }
        bodies.insert(sha, body.clone());
    }

    /// Forgets every script (SCRIPT FLUSH).
    pub fn forget_all(&self) {
        self.bodies.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The body of the script `sha`, if known.
    pub fn body(&self, sha: &[u8]) -> Option<Bytes> {
        let sha = Bytes::from(sha.to_ascii_lowercase());
        self.bodies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&sha)
            .cloned()
    }
}

/// True for a NOSCRIPT error reply.
pub fn is_noscript(reply: &Reply) -> bool {
    match reply {
        Reply::Raw(raw) => raw.starts_with(b"-NOSCRIPT"),
        Reply::Frame(resp::Frame::Error(text)) => text.starts_with(b"NOSCRIPT"),
        Reply::Frame(_) | Reply::Admitted => false,
    }
}

/// Loads the script `body` on every node and sends `command` (an EVALSHA)
/// again.
///
/// # Errors
/// A backend failed.
pub async fn reload_and_retry<S>(mut steps: Steps<S>, body: Bytes, command: Command) -> Result<Reply, Error>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    let loaded = steps.call(vec![arg("SCRIPT"), arg("LOAD"), body]).await?;
    if loaded.is_error() {
        return Ok(Reply::Frame(loaded));
    }
    let args = command.request.args().to_vec();
    Ok(Reply::Frame(steps.call(args).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_keyed_by_their_sha1() {
        let cache = ScriptCache::default();
        cache.remember(&Bytes::from_static(b"return 1"));
        // SHA1("return 1"), as SCRIPT LOAD answers it.
        assert_eq!(
            cache.body(b"E0E1F9FABFC9D4800C877A703B823AC0578FF8DB").as_deref(),
            Some(&b"return 1"[..])
        );
        assert_eq!(cache.body(b"0000"), None);
    }
}
