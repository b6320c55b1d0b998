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

    /// Sends `args` like [`Steps::call`] and gives the reply as it came,
    /// unparsed: for a reply that may be large and is passed on.
    ///
    /// # Errors
    /// The backend failed.
    pub async fn call_raw(&mut self, args: Vec<Bytes>) -> Result<Reply, Error> {
        self.inner.call(self.command(args, None)).await
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
        async move { into_frame(reply.await?).await }
    }

    async fn send(&mut self, args: Vec<Bytes>, route: Option<Route>) -> Result<Frame, Error> {
        into_frame(self.inner.call(self.command(args, route)).await?).await
    }

    /// A command of the client's for `args`, its spec looked up below.
    fn command(&self, args: Vec<Bytes>, route: Option<Route>) -> Command {
        let mut command = self.base.with_request(Request::from_args(args), route);
        command.spec = None;
        command
    }
}

/// A reply at least this large is parsed on tokio's blocking pool rather
/// than on the event loop: a million elements take tens of milliseconds
/// to parse, which every other client of the worker would wait for. Below
/// it, the hand-off would cost more than the parse.
const PARSED_APART: usize = 1 << 20;

/// Every reply of a fan-out as a frame, the large ones parsed off the
/// event loop as [`Steps`] does; the first error if any.
pub(crate) async fn into_frames(replies: Vec<Result<Reply, Error>>) -> Result<Vec<Frame>, Error> {
    let mut frames = Vec::with_capacity(replies.len());
    for reply in replies {
        frames.push(into_frame(reply?).await?);
    }
    Ok(frames)
}

async fn into_frame(reply: Reply) -> Result<Frame, Error> {
    let invalid = |e: resp::Error| Error::InvalidReply(e.to_string());
    match reply {
        Reply::Raw(raw) if raw.len() >= PARSED_APART => {
            tokio::task::spawn_blocking(move || Frame::parse_complete(&raw))
                .await
                .map_err(|e| Error::InvalidReply(format!("parsing a large reply failed: {e}")))?
                .map_err(invalid)
        }
        reply => reply.into_frame().map_err(invalid),
    }
}

/// Lets the worker serve other clients between batches of a long loop
/// over a reply's elements: call it with each element's index.
pub async fn pace(index: usize) {
    if index % 1024 == 1023 {
        tokio::task::yield_now().await;
    }
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

#[cfg(test)]
mod tests {
    use std::future::ready;

    use bytes::BytesMut;
    use test_util::turns::OtherTask;

    use super::*;

    /// An array of 200,000 names, and its encoding: over [`PARSED_APART`].
    fn large_array(name: &str) -> (Frame, Bytes) {
        let array = Frame::Array(
            (0..200_000)
                .map(|i| Frame::Bulk(Bytes::from(format!("{name}:{i}"))))
                .collect(),
        );
        let mut raw = BytesMut::new();
        array.encode(resp::Protocol::Resp2, &mut raw);
        assert!(raw.len() >= PARSED_APART);
        (array, raw.freeze())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_large_reply_is_parsed_off_the_event_loop() {
        let (keys, raw) = large_array("key");
        let other_client = OtherTask::spawn();
        let base = Command::new(Request::from_args(["KEYS", "*"]));
        let node = tower::service_fn(move |_: Command| ready(Ok::<_, Error>(Reply::Raw(raw.clone()))));
        let mut steps = Steps::new(node, base);
        let before = other_client.turns();
        let parsed = steps.call(args(&["KEYS", "*"])).await.expect("a frame");
        let during = other_client.turns() - before;
        assert_eq!(parsed, keys);
        assert!(during > 0, "the worker did nothing else while parsing");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_fan_outs_large_replies_are_parsed_off_the_event_loop() {
        let (members, raw) = large_array("member");
        let other_client = OtherTask::spawn();
        let before = other_client.turns();
        let replies = vec![Ok(Reply::Raw(Bytes::from_static(b":1\r\n"))), Ok(Reply::Raw(raw))];
        let frames = into_frames(replies).await.expect("frames");
        let during = other_client.turns() - before;
        assert_eq!(frames, vec![Frame::Integer(1), members]);
        assert!(during > 0, "the worker did nothing else while parsing");
        let failed = into_frames(vec![
            Ok(Reply::Raw(Bytes::from_static(b"+OK\r\n"))),
            Err(Error::InvalidReply("cut".into())),
        ])
        .await;
        assert!(failed.is_err());
    }
}
