//! A scriptable mock node: a TCP listener that answers each request with
//! what a closure returns. For what a real server cannot be made to do on
//! demand (a scripted ASK, a reply cut in half), never for behaviour.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use resp::{Request, RequestDecoder};

/// What the mock does with one request.
pub enum Answer {
    /// Write these bytes.
    Reply(Bytes),
    /// Write these bytes, then close the connection.
    ReplyAndClose(Bytes),
    /// Close the connection without answering.
    Close,
}

/// A mock node. Every request it receives is recorded.
#[derive(Clone)]
pub struct MockNode {
    addr: String,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl MockNode {
    /// Starts a mock node on a free port; `answer` is called for each request.
    ///
    /// # Panics
    /// No port could be bound.
    pub fn start<F>(answer: F) -> MockNode
    where
        F: Fn(&Request) -> Answer + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a mock node");
        let addr = listener.local_addr().expect("local address").to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(answer);
        let node = MockNode {
            addr,
            seen: seen.clone(),
        };
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (seen, answer) = (seen.clone(), answer.clone());
                std::thread::spawn(move || serve(stream, &seen, &*answer));
            }
        });
        node
    }

    /// `127.0.0.1:<port>`
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The requests received so far, as lists of arguments.
    pub fn seen(&self) -> Vec<Vec<String>> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.iter()
            .map(|r| {
                r.args()
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .collect()
    }
}

fn serve(
    mut stream: TcpStream,
    seen: &Mutex<Vec<Request>>,
    answer: &(dyn Fn(&Request) -> Answer + Send + Sync),
) {
    let mut decoder = RequestDecoder::default();
    decoder.set_authenticated(true);
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        while let Ok(Some(request)) = decoder.decode(&mut buf) {
            let reply = answer(&request);
            seen.lock().unwrap_or_else(|e| e.into_inner()).push(request);
            match reply {
                Answer::Reply(bytes) => {
                    if stream.write_all(&bytes).is_err() {
                        return;
                    }
                }
                Answer::ReplyAndClose(bytes) => {
                    let _ = stream.write_all(&bytes);
                    return;
                }
                Answer::Close => return,
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
