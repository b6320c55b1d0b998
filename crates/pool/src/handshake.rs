//! Opening a backend connection: TCP connect, then AUTH, HELLO, SELECT,
//! CLIENT SETNAME and READONLY as the endpoint needs, pipelined in one write.

use std::sync::Arc;

use bytes::BytesMut;
use resp::{encode_command, Protocol, ReplyDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Endpoint, Error, Handshake};

/// Connects to `endpoint` and runs the handshake. The caller applies the
/// connect timeout.
///
/// # Errors
/// [`Error::Connect`] when the socket fails, [`Error::Handshake`] when the
/// node answers a handshake command with an error.
pub async fn connect(endpoint: &Endpoint, handshake: &Handshake) -> Result<TcpStream, Error> {
    let addr: &Arc<str> = &endpoint.addr;
    let io_error = |e: std::io::Error| Error::Connect {
        addr: addr.clone(),
        reason: e.to_string(),
    };
    let mut stream = TcpStream::connect(&**addr).await.map_err(io_error)?;
    stream.set_nodelay(true).map_err(io_error)?;
    let commands = commands(endpoint, handshake);
    if commands.is_empty() {
        return Ok(stream);
    }
    let mut out = BytesMut::new();
    for command in &commands {
        encode_command(command, &mut out);
    }
    stream.write_all(&out).await.map_err(io_error)?;
    let mut decoder = ReplyDecoder::default();
    let mut buf = BytesMut::with_capacity(1024);
    let mut answered = 0;
    while answered < commands.len() {
        while let Some(reply) = decoder.decode(&mut buf).map_err(|e| Error::Protocol {
            addr: addr.clone(),
            reason: e.to_string(),
        })? {
            if matches!(reply.first(), Some(b'-' | b'!')) {
                let text = String::from_utf8_lossy(&reply[1..]).trim_end().to_string();
                return Err(Error::Handshake {
                    addr: addr.clone(),
                    reply: text,
                });
            }
            answered += 1;
        }
        if answered < commands.len() && stream.read_buf(&mut buf).await.map_err(io_error)? == 0 {
            return Err(Error::ConnectionLost {
                addr: addr.clone(),
                sent: true,
            });
        }
    }
    Ok(stream)
}

/// The handshake commands for an endpoint, in the order they must run.
fn commands(endpoint: &Endpoint, handshake: &Handshake) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    if endpoint.protocol == Protocol::Resp3 {
        let mut hello = vec!["HELLO".to_string(), "3".to_string()];
        if let Some(password) = &handshake.password {
            let user = handshake
                .username
                .clone()
                .unwrap_or_else(|| "default".to_string());
            hello.extend(["AUTH".to_string(), user, password.clone()]);
        }
        commands.push(hello);
    } else if let Some(password) = &handshake.password {
        let mut auth = vec!["AUTH".to_string()];
        auth.extend(handshake.username.clone());
        auth.push(password.clone());
        commands.push(auth);
    }
    if endpoint.db != 0 {
        commands.push(vec!["SELECT".to_string(), endpoint.db.to_string()]);
    }
    if let Some(name) = &handshake.client_name {
        commands.push(vec!["CLIENT".to_string(), "SETNAME".to_string(), name.clone()]);
    }
    if endpoint.readonly {
        commands.push(vec!["READONLY".to_string()]);
    }
    commands
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp3_authenticates_inside_hello() {
        let endpoint = Endpoint::new("x:1").with_protocol(Protocol::Resp3).with_db(3);
        let handshake = Handshake {
            username: None,
            password: Some("pw".into()),
            client_name: Some("proxy".into()),
        };
        let commands = commands(&endpoint, &handshake);
        assert_eq!(commands[0], ["HELLO", "3", "AUTH", "default", "pw"]);
        assert_eq!(commands[1], ["SELECT", "3"]);
        assert_eq!(commands[2], ["CLIENT", "SETNAME", "proxy"]);
    }

    #[test]
    fn plain_resp2_db0_sends_nothing() {
        assert!(commands(&Endpoint::new("x:1"), &Handshake::default()).is_empty());
    }
}
