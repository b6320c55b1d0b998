//! Session hooks ([`proxy::hooks`]): an embedder sees each session from
//! connection to disconnection with a context of its own, can refuse a
//! connection or answer a request itself, and is told of every reply once,
//! in the client's order, with the session as the request found it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{show, RawClient};
use proxy::hooks::{Done, Gone, Session, SessionHooks};
use resp::{Frame, Request};
use test_util::{Flavor, Server};

/// What the hooks saw, for the test to read.
#[derive(Clone, Default)]
struct Seen {
    /// `name db user error?` per reply, in order.
    replies: Arc<Mutex<Vec<String>>>,
    /// Each finished session's count of requests.
    finished: Arc<Mutex<Vec<u64>>>,
}

/// Counts requests per session, answers DEBUG itself, refuses clients
/// once `refuse` is set.
struct Recorder {
    seen: Seen,
    refuse: Arc<Mutex<bool>>,
}

impl SessionHooks for Recorder {
    type Ctx = u64;

    fn new_ctx(&self, _session: &Session<'_>) -> u64 {
        0
    }

    fn connected(&self, _session: &Session<'_>, _ctx: &mut u64) -> Result<(), Frame> {
        match *self.refuse.lock().unwrap() {
            true => Err(Frame::error("ERR no more clients today")),
            false => Ok(()),
        }
    }

    fn request_filter(&self, request: &Request, _session: &Session<'_>, _ctx: &mut u64) -> Option<Frame> {
        request.is("debug").then(|| Frame::simple("answered by a hook"))
    }

    fn logging(&self, done: &Done<'_>, requests: &mut u64) {
        *requests += 1;
        let name = String::from_utf8_lossy(done.request.name()).to_ascii_uppercase();
        let error = done.error.as_deref().map(|e| format!(" {e}")).unwrap_or_default();
        let line = format!("{name} {} {}{error}", done.session.db, done.session.user);
        self.seen.replies.lock().unwrap().push(line);
    }

    fn disconnected(&self, _session: &Session<'_>, _gone: Gone, requests: &mut u64) {
        self.seen.finished.lock().unwrap().push(*requests);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_see_every_session_and_every_reply() {
    let server = Server::start(Flavor::Valkey);
    let config = proxy::ProxyConfig {
        listen: "127.0.0.1:0".into(),
        backends: vec![server.addr()],
        ..proxy::ProxyConfig::default()
    };
    let seen = Seen::default();
    let refuse = Arc::new(Mutex::new(false));
    let hooks = Recorder {
        seen: seen.clone(),
        refuse: refuse.clone(),
    };
    let proxy = proxy::Proxy::bind(config).await.unwrap().hooks(hooks);
    let addr = proxy.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(proxy.run(async {
        let _ = stopped.await;
    }));

    let mut client = RawClient::connect(&addr).await;
    assert_eq!(show(&client.call(&["SET", "k", "v"]).await), "OK");
    assert_eq!(show(&client.call(&["SELECT", "2"]).await), "OK");
    assert!(show(&client.call(&["INCR", "nosuchcommand", "x"]).await).starts_with("-ERR wrong number"));
    // Answered by the hook, in every state: plain and inside MULTI.
    assert_eq!(
        show(&client.call(&["DEBUG", "SLEEP", "0"]).await),
        "answered by a hook"
    );
    assert_eq!(show(&client.call(&["MULTI"]).await), "OK");
    assert_eq!(
        show(&client.call(&["DEBUG", "SLEEP", "0"]).await),
        "answered by a hook"
    );
    assert_eq!(show(&client.call(&["GET", "k"]).await), "QUEUED");
    assert_eq!(show(&client.call(&["EXEC"]).await), "[(nil)]");
    // Pipelined: one reply each, in order.
    client.send(&["PING"]).await;
    client.send(&["GET", "k"]).await;
    assert_eq!(show(&client.next().await), "PONG");
    assert_eq!(show(&client.next().await), "(nil)");
    drop(client);

    // A refused connection gets the hook's error, and is closed.
    *refuse.lock().unwrap() = true;
    let mut refused = RawClient::connect(&addr).await;
    assert_eq!(show(&refused.next().await), "-ERR no more clients today");
    assert!(refused.closed_within(Duration::from_secs(5)).await);

    for _ in 0..250 {
        if !seen.finished.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        *seen.replies.lock().unwrap(),
        [
            "SET 0 default",
            // SELECT as the request found the session.
            "SELECT 0 default",
            "INCR 2 default ERR wrong number of arguments for 'incr' command",
            "DEBUG 2 default",
            "MULTI 2 default",
            "DEBUG 2 default",
            "GET 2 default",
            "EXEC 2 default",
            "PING 2 default",
            "GET 2 default",
        ]
    );
    // The session's own context, handed to its last hook.
    assert_eq!(*seen.finished.lock().unwrap(), [10]);
    let _ = stop.send(());
    task.await.unwrap();
}
