//! `[[listeners]]`: more addresses to listen on, each bound to a tenant
//! (twemproxy's and aster's pool per port). A client that connects there
//! belongs to that tenant: it is logged in as the listener's `user` at
//! once, or must AUTH as one of the tenant's users.

use std::net::SocketAddr;

use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};

use crate::config::{ConfigError, UserConfig};

/// One `[[listeners]]` entry.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address to listen on, `host:port`.
    pub addr: String,
    /// The tenant its clients belong to.
    pub tenant: String,
    /// The user its clients are logged in as without AUTH (one of the
    /// tenant's); without it, they must AUTH as one.
    #[serde(default)]
    pub user: Option<String>,
}

/// What is wrong with the listeners.
pub(crate) fn check(
    listeners: &[ListenerConfig],
    listen: &str,
    users: &[UserConfig],
) -> Result<(), ConfigError> {
    let bad = |why: String| Err(ConfigError::Listeners(why));
    for (i, listener) in listeners.iter().enumerate() {
        if listener.addr.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::BadAddress {
                what: "listener",
                value: listener.addr.clone(),
            });
        }
        if listener.addr == listen || listeners[..i].iter().any(|other| other.addr == listener.addr) {
            return bad(format!("{} is listened on twice", listener.addr));
        }
        if let Some(name) = &listener.user {
            let owner = users.iter().find(|user| user.name == *name);
            if owner.and_then(|user| user.tenant.as_deref()) != Some(listener.tenant.as_str()) {
                return bad(format!(
                    "{}: user {name:?} is not a user of tenant {:?}",
                    listener.addr, listener.tenant
                ));
            }
        }
    }
    Ok(())
}

/// Whom the clients of one bound listener are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    /// The address it is bound to.
    pub addr: SocketAddr,
    /// The tenant's number.
    pub tenant: u16,
    /// The user its clients are logged in as, if any.
    pub user: Option<String>,
}

/// Binds every listener; their roles, tenant numbers from `number`.
///
/// # Errors
/// An address cannot be bound.
pub async fn bind(
    config: &[ListenerConfig],
    number: impl Fn(&str) -> u16,
) -> std::io::Result<(Vec<TcpListener>, Vec<Role>)> {
    let mut sockets = Vec::with_capacity(config.len());
    let mut roles = Vec::with_capacity(config.len());
    for listener in config {
        let socket = TcpListener::bind(&listener.addr).await?;
        roles.push(Role {
            addr: socket.local_addr()?,
            tenant: number(&listener.tenant),
            user: listener.user.clone(),
        });
        sockets.push(socket);
    }
    Ok((sockets, roles))
}

/// The next client of any of the listeners (the main one first).
///
/// # Errors
/// Accepting failed.
pub async fn accept(
    main: &TcpListener,
    listeners: &[TcpListener],
) -> std::io::Result<(TcpStream, SocketAddr)> {
    if listeners.is_empty() {
        return main.accept().await;
    }
    let all = std::iter::once(main)
        .chain(listeners)
        .map(|socket| Box::pin(socket.accept()));
    futures::future::select_all(all).await.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(addr: &str, user: Option<&str>) -> ListenerConfig {
        ListenerConfig {
            addr: addr.into(),
            tenant: "shop".into(),
            user: user.map(Into::into),
        }
    }

    #[test]
    fn bad_listeners_are_named_in_the_error() {
        let users = [UserConfig {
            name: "shop-app".into(),
            tenant: Some("shop".into()),
            ..UserConfig::default()
        }];
        let error = |listeners: &[ListenerConfig]| {
            check(listeners, "127.0.0.1:7777", &users)
                .unwrap_err()
                .to_string()
        };
        assert!(check(
            &[listener("127.0.0.1:7778", Some("shop-app"))],
            "127.0.0.1:7777",
            &users
        )
        .is_ok());
        assert_eq!(
            error(&[listener("nonsense", None)]),
            "invalid listener address \"nonsense\": expected HOST:PORT"
        );
        assert_eq!(
            error(&[listener("127.0.0.1:7777", None)]),
            "listeners: 127.0.0.1:7777 is listened on twice"
        );
        assert_eq!(
            error(&[listener("127.0.0.1:7778", Some("ops"))]),
            "listeners: 127.0.0.1:7778: user \"ops\" is not a user of tenant \"shop\""
        );
    }
}
