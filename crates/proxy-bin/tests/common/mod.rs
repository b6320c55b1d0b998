//! Shared helpers for the binary's tests.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The binary.
pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_valkey-proxy"))
}

/// Starts the binary with `--config config` and waits until it logs that
/// it listens; its log is read on (and dropped) from then on, so that it
/// never blocks on a full pipe.
pub fn start_listening(config: &Path) -> Child {
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
    std::thread::spawn(move || for _ in lines {});
    child
}
