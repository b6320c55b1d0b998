//! [`Probe`]: how discovery asks a node a question.

use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use resp::{encode_command, Frame, ReplyDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Error;

/// Sends one command to one node and returns the parsed reply. An error
/// reply is returned as [`Frame::Error`], not as `Err`.
#[async_trait]
pub trait Probe: Send + Sync + 'static {
    /// Asks `addr` one command.
    ///
    /// # Errors
    /// The node could not be reached or answered garbage.
    async fn query(&self, addr: &str, args: &[&str]) -> Result<Frame, Error>;
}

/// A probe over a fresh TCP connection per question, authenticating first
/// when credentials are set. Topology questions are rare (one round per
/// refresh interval), so a connection per question keeps this simple and
/// independent of the pool.
#[derive(Clone, Debug)]
pub struct TcpProbe {
    /// ACL user for AUTH.
    pub username: Option<String>,
    /// Password for AUTH (`None`: no AUTH).
    pub password: Option<String>,
    /// Limit for connect plus reply.
    pub timeout: Duration,
}

impl Default for TcpProbe {
    fn default() -> Self {
        TcpProbe {
            username: None,
            password: None,
            timeout: Duration::from_secs(2),
        }
    }
}

#[async_trait]
impl Probe for TcpProbe {
    async fn query(&self, addr: &str, args: &[&str]) -> Result<Frame, Error> {
        let unreachable = |reason: String| Error::Unreachable {
            addr: addr.to_string(),
            reason,
        };
        let exchange = async {
            let mut stream = TcpStream::connect(addr)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let mut out = BytesMut::new();
            let mut expected = 1;
            if let Some(password) = &self.password {
                let mut auth = vec!["AUTH"];
                auth.extend(self.username.as_deref());
                auth.push(password);
                encode_command(&auth, &mut out);
                expected += 1;
            }
            encode_command(args, &mut out);
            stream
                .write_all(&out)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let mut decoder = ReplyDecoder::default();
            let mut buf = BytesMut::with_capacity(4096);
            let mut replies = Vec::new();
            while replies.len() < expected {
                match decoder.decode(&mut buf) {
                    Ok(Some(reply)) => replies.push(reply),
                    Ok(None) => {
                        if stream
                            .read_buf(&mut buf)
                            .await
                            .map_err(|e| unreachable(e.to_string()))?
                            == 0
                        {
                            return Err(unreachable("connection closed".into()));
                        }
                    }
                    Err(e) => return Err(unreachable(e.to_string())),
                }
            }
            let last = replies.pop().unwrap_or_default();
            Frame::parse_complete(&last).map_err(|e| unreachable(e.to_string()))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(unreachable(format!("no answer within {:?}", self.timeout))))
    }
}
