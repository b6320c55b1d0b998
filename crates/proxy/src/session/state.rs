//! What the proxy remembers about one client connection.

use std::sync::Arc;

use resp::Protocol;

use super::subscriptions::Subscriptions;
use crate::clients::ClientInfo;
use crate::commands::transaction::Transaction;

/// Connection state that changes how the client's commands are handled.
#[derive(Debug)]
pub struct SessionState {
    /// Protocol chosen with HELLO.
    pub protocol: Protocol,
    /// Database chosen with SELECT.
    pub db: u32,
    /// Whether the client has authenticated (or needs not).
    pub authenticated: bool,
    /// The user it authenticated as.
    pub user: String,
    /// Its entry in the client registry.
    pub info: Arc<ClientInfo>,
    /// MULTI queue and WATCH connection.
    pub transaction: Transaction,
    /// Subscriptions and the links that carry them.
    pub pubsub: Subscriptions,
}

impl SessionState {
    /// A fresh connection.
    pub fn new(info: Arc<ClientInfo>, requires_auth: bool) -> Self {
        SessionState {
            protocol: Protocol::Resp2,
            db: 0,
            authenticated: !requires_auth,
            user: "default".into(),
            info,
            transaction: Transaction::default(),
            pubsub: Subscriptions::default(),
        }
    }
}
