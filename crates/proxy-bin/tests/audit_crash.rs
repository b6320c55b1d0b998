//! The audit log of the binary across a `kill -9`: every SET acknowledged
//! more than a second before the kill has its record, the next start says
//! which record was the last one kept, and SIGUSR1 moves the log to a new
//! file after an outside logrotate renamed it.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use test_util::{ports::free_port, Flavor, Server};

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream
}

/// Sends `SET key 1` and reads the `+OK`; false once the proxy is gone.
fn set(stream: &mut TcpStream, key: &str) -> bool {
    let request = format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\n1\r\n", key.len());
    let mut reply = [0u8; 5];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+OK\r\n"
}

fn records(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn a_crash_loses_no_record_older_than_a_second() {
    let server = Server::start(Flavor::Valkey);
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("vp-audit-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log = dir.join("audit.jsonl");
    let config = dir.with_extension("toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nbackends = [\"{}\"]\n\n[audit]\nevents = [\"command\"]\n\
             commands = \"+@write\"\n\n[[audit.sinks]]\ntype = \"file\"\npath = \"{}\"\nfsync = \"1s\"\n",
            server.addr(),
            log.display()
        ),
    )
    .unwrap();
    let proxy = common::start_listening(&config);

    // One client SETs as fast as it can; each acknowledgement is noted.
    let acked = Arc::new(Mutex::new(Vec::<(String, Instant)>::new()));
    let running = Arc::new(AtomicBool::new(true));
    let load = {
        let (acked, running) = (acked.clone(), running.clone());
        std::thread::spawn(move || {
            let mut stream = connect(port);
            for i in 0.. {
                let key = format!("crash:{i}");
                if !running.load(Ordering::Acquire) || !set(&mut stream, &key) {
                    return;
                }
                acked.lock().unwrap().push((key, Instant::now()));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    signal(&proxy, "-KILL");
    let killed = Instant::now();
    running.store(false, Ordering::Release);
    load.join().unwrap();
    let mut proxy = proxy;
    let _ = proxy.wait();

    let kept = records(&log);
    let keys: std::collections::HashSet<&str> = kept.iter().filter_map(|r| r["keys"][0].as_str()).collect();
    let acked = acked.lock().unwrap();
    let old_enough: Vec<&(String, Instant)> = acked
        .iter()
        .filter(|(_, at)| killed.duration_since(*at) > Duration::from_secs(1))
        .collect();
    assert!(old_enough.len() > 100, "{} SETs acknowledged", acked.len());
    for (key, _) in &old_enough {
        assert!(
            keys.contains(key.as_str()),
            "{key} was acknowledged and has no record"
        );
    }
    let last_seq = kept.last().unwrap()["seq"].as_u64().unwrap();
    assert_eq!(last_seq as usize, kept.len());

    // The next start says which record of the last process was kept.
    let proxy = common::start_listening(&config);
    let mut stream = connect(port);
    assert!(set(&mut stream, "after-restart"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let restarted = loop {
        let all = records(&log);
        if all.last().is_some_and(|r| r["keys"][0] == "after-restart") {
            break all;
        }
        assert!(Instant::now() < deadline, "the new process's records never came");
        std::thread::sleep(Duration::from_millis(20));
    };
    let restart = &restarted[kept.len()];
    assert_eq!(restart["event"], "audit_restart");
    assert_eq!(restart["seq"], 1);
    assert_eq!(restart["last_seq_durable"].as_u64(), Some(last_seq));

    // An outside logrotate renames the file and sends SIGUSR1: the next
    // records go to a new file under the configured name.
    let rotated = dir.join("audit.jsonl.1");
    std::fs::rename(&log, &rotated).unwrap();
    signal(&proxy, "-USR1");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    while records(&log).is_empty() {
        assert!(Instant::now() < deadline, "no new file after SIGUSR1");
        assert!(set(&mut stream, &format!("after-usr1:{n}")));
        n += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let moved = records(&log);
    assert!(moved[0]["keys"][0].as_str().unwrap().starts_with("after-usr1:"));
    // Nothing was lost between the two files.
    let before = records(&rotated);
    let seqs: Vec<u64> = before
        .iter()
        .chain(&moved)
        .skip(kept.len())
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    signal(&proxy, "-TERM");
    let mut proxy = proxy;
    let _ = proxy.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&config);
}
