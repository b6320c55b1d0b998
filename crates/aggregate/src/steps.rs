//! [`Steps`]: a command the proxy carries out as several requests of its
//! own (scans, copies between slots), sent through the service below.

use std::future::Future;

use bytes::Bytes;
use resp::{Frame, Request};
use router::{Command, Error, Reply, Route};
use tower::Service;

/// Sends requests on behalf of one client command, with its connection
/// state (protocol, affinity) but in the backend's database 0 unless the
/// base command says otherwise.
#[derive(Debug)]
pub struct Steps<S> {
    inner: S,
    base: Command,
}

impl<S> Steps<S>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    /// Steps for `base` through `inner`.
    pub fn new(inner: S, base: Command) -> Self {
        Steps { inner, base }
    }

    /// Sends `args` wherever their keys route (split across slots where the
    /// service below splits) and reads the reply.
    ///
    /// # Errors
    /// The backend failed, or its reply was not valid RESP.
    pub async fn call(&mut self, args: Vec<Bytes>) -> Result<Frame, Error> {
        self.send(args, None).await
    }

    /// Sends `args` to the primary of `shard`.
    ///
    /// # Errors
    /// As [`Steps::call`].
    pub async fn call_on(&mut self, shard: usize, args: Vec<Bytes>) -> Result<Frame, Error> {
        let shard = shard as u32;
        self.send(args, Some(Route::Node { shard, replica: None })).await
    }

    /// Starts `args` (routed by their keys) and returns at once: the
    /// request is on its way, and several started this way wait at once.
    ///
    /// # Errors
    /// The returned future fails as [`Steps::call`].
    pub fn start(&mut self, args: Vec<Bytes>) -> impl Future<Output = Result<Frame, Error>> + Send + 'static
    where
        S::Future: Send + 'static,
    {
        let reply = self.inner.call(self.command(args, None));
        async move { into_frame(reply.await?) }
    }

    async fn send(&mut self, args: Vec<Bytes>, route: Option<Route>) -> Result<Frame, Error> {
        into_frame(self.inner.call(self.command(args, route)).await?)
    }

    /// A command of the client's for `args`, its spec looked up below.
    fn command(&self, args: Vec<Bytes>, route: Option<Route>) -> Command {
        let mut command = self.base.with_request(Request::from_args(args), route);
        command.spec = None;
        command
    }
}

fn into_frame(reply: Reply) -> Result<Frame, Error> {
    reply.into_frame().map_err(|e| Error::InvalidReply(e.to_string()))
}

/// `Bytes` for a static argument.
pub fn arg(text: &'static str) -> Bytes {
    Bytes::from_static(text.as_bytes())
}

/// Arguments from text, for tests.
#[cfg(test)]
pub(crate) fn args(text: &[&str]) -> Vec<Bytes> {
    text.iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect()
}
