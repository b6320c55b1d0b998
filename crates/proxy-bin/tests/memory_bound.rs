//! Clients that ask for much and never read cannot take the machine's
//! memory: with the default configuration, three clients that each
//! pipeline 1,000 GETs of a 4 MiB value and read nothing keep the proxy's
//! resident memory under 512 MiB (its default `maxmemory`), are cut with a
//! logged reason, a client that reads is served whole meanwhile, and the
//! memory goes back to the system once they are gone. The proxy is the
//! binary (its allocator included), in a process of its own.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use test_util::{ports::free_port, Flavor, Server};

const VALUE: usize = 4 * 1024 * 1024;
const MAXMEMORY: usize = 512 * 1024 * 1024;

/// The process's resident memory, bytes (0 once it is gone).
fn resident(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one bulk reply whole and returns its length.
fn read_bulk(stream: &mut TcpStream) -> usize {
    let mut header = Vec::new();
    let mut byte = [0u8; 1];
    while !header.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).unwrap();
        header.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&header).to_string();
    let len: usize = text
        .strip_prefix('$')
        .and_then(|len| len.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("not a bulk string: {text}"));
    let mut payload = vec![0u8; len + 2];
    stream.read_exact(&mut payload).unwrap();
    len
}

#[test]
fn clients_that_do_not_read_keep_the_proxy_under_its_memory_budget() {
    let server = Server::start(Flavor::Valkey);
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("vp-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nbackends = [\"{}\"]\n",
            server.addr()
        ),
    )
    .unwrap();
    let (mut proxy, log) = common::start_logging(&config);
    let pid = proxy.id();
    let addr = format!("127.0.0.1:{port}");

    let mut reader = TcpStream::connect(&addr).unwrap();
    reader
        .write_all(&command(&[b"SET", b"big", &vec![b'x'; VALUE]]))
        .unwrap();
    let mut ok = [0u8; 5];
    reader.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"+OK\r\n");
    let idle = resident(pid);

    let peak = Arc::new(AtomicUsize::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(resident(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let get = command(&[b"GET", b"big"]);
    let hogs: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut hog = TcpStream::connect(&addr).unwrap();
            hog.write_all(&get.repeat(1000)).unwrap();
            hog
        })
        .collect();
    // The reading client is served whole meanwhile.
    let started = Instant::now();
    let mut whole = 0;
    while started.elapsed() < Duration::from_secs(10) {
        reader.write_all(&get).unwrap();
        assert_eq!(read_bulk(&mut reader), VALUE);
        whole += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(Ordering::Relaxed);
    eprintln!("peak resident memory {} MiB, idle {} MiB", peak >> 20, idle >> 20);
    assert!(
        peak < MAXMEMORY,
        "peak resident memory {} MiB, over the default maxmemory (idle {} MiB)",
        peak >> 20,
        idle >> 20
    );
    let cuts: Vec<String> = log
        .try_iter()
        .filter(|line| {
            line.contains("evicting the client holding the most memory")
                || line.contains("closing a client over the hard output buffer limit")
        })
        .collect();
    assert!(
        cuts.len() >= 2,
        "the clients that do not read were not cut, with a reason: {cuts:?}"
    );
    assert!(whole >= 10, "the reading client got {whole} GETs whole");

    drop(hogs);
    let mut after = resident(pid);
    let gone = Instant::now();
    while after > idle + 64 * 1024 * 1024 && gone.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
        after = resident(pid);
    }
    assert!(
        after <= idle + 64 * 1024 * 1024,
        "a minute after the clients left: {} MiB resident, {} MiB when idle",
        after >> 20,
        idle >> 20
    );
    // Still serving.
    reader.write_all(&get).unwrap();
    assert_eq!(read_bulk(&mut reader), VALUE);
    proxy.kill().unwrap();
    proxy.wait().unwrap();
}
