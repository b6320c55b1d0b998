//! Shared helpers for the binary's tests.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;

/// The binary.
pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_valkey-proxy"))
}

/// Starts the binary with `--config config` and waits until it logs that
/// it listens; its log is read on (and dropped) from then on, so that it
/// never blocks on a full pipe.
pub fn start_listening(config: &Path) -> Child {
    start_logging(config).0
}

/// [`start_listening`], with the log lines that follow (until the proxy
/// exits).
pub fn start_logging(config: &Path) -> (Child, Receiver<String>) {
    let mut child = binary()
        .arg("--config")
        .arg(config)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines.next().expect("the proxy logs that it listens").unwrap();
        if line.contains("listening") {
            break;
        }
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            // Nobody listening any more is fine: the log is still read.
            let _ = sender.send(line);
        }
    });
    (child, receiver)
}
