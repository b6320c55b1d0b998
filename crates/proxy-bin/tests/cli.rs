//! The binary: flags, exit code 64 on a bad configuration, serving, and a
//! drain on SIGTERM.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use test_util::{ports::free_port, Flavor, Server};

use common::binary;

#[test]
fn help_explains_every_flag() {
    let output = binary().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--config",
        "--listen",
        "--backend",
        "--mode",
        "--threads",
        "--admin-listen",
        "--log",
        "--log-format",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn bad_configuration_exits_64_with_one_line() {
    let cases: &[&[&str]] = &[
        &[],
        &["--backend", "nonsense"],
        &["--backend", "127.0.0.1:6379", "--listen", "not-an-address"],
        &["--config", "/nonexistent/valkey-proxy.toml"],
    ];
    for args in cases {
        let output = binary().args(*args).output().unwrap();
        assert_eq!(output.status.code(), Some(64), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("valkey-proxy: bad configuration:"), "{stderr}");
    }
}

#[test]
fn unknown_keys_in_the_file_are_refused() {
    let path = std::env::temp_dir().join(format!("vp-cli-{}.toml", std::process::id()));
    std::fs::write(&path, "backends = [\"127.0.0.1:6379\"]\nlisten_on = \"x\"\n").unwrap();
    let output = binary().arg("--config").arg(&path).output().unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("listen_on"));
}

#[test]
fn the_operations_settings_refuse_bad_values_by_name() {
    let cases: &[(&str, &str)] = &[
        (
            "admin_listen = \"nowhere\"",
            "invalid admin_listen address \"nowhere\": expected HOST:PORT",
        ),
        ("slowlog_max_len = \"many\"", "slowlog_max_len"),
        ("slowlog_log_slower_than = \"slow\"", "slowlog_log_slower_than"),
        ("log = \"proxy=loud\"", "invalid log filter \"proxy=loud\""),
        ("maxmemory_clients = -1", "maxmemory_clients"),
        ("maxmemory = \"half\"", "maxmemory"),
        (
            "client_output_buffer_limit = \"lots\"",
            "client_output_buffer_limit",
        ),
        (
            "client_output_buffer_soft_limit = -5",
            "client_output_buffer_soft_limit",
        ),
        (
            "client_output_buffer_soft_seconds = \"a minute\"",
            "client_output_buffer_soft_seconds",
        ),
    ];
    for (index, (line, said)) in cases.iter().enumerate() {
        let path = std::env::temp_dir().join(format!("vp-cli-ops-{}-{index}.toml", std::process::id()));
        std::fs::write(&path, format!("backends = [\"127.0.0.1:6379\"]\n{line}\n")).unwrap();
        let output = binary().arg("--config").arg(&path).output().unwrap();
        let _ = std::fs::remove_file(&path);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{line}: {stderr}");
        assert!(stderr.contains(said), "{line}: {stderr}");
    }
}

#[test]
fn text_logs_written_to_a_pipe_have_no_colour_codes() {
    use std::io::BufRead;
    let server = Server::start(Flavor::Valkey);
    let mut child = binary()
        .args([
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--backend",
            &server.addr(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let listening = line.contains("listening");
        seen.push(line);
        if listening {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.iter().any(|line| line.contains(" INFO ")), "{seen:?}");
    assert!(seen.iter().all(|line| !line.contains('\u{1b}')), "{seen:?}");
}

#[test]
fn serves_from_a_config_file_and_drains_on_sigterm() {
    serve_and_drain(1);
}

#[test]
fn serves_on_several_worker_threads() {
    serve_and_drain(3);
}

/// Runs the binary with `threads` worker threads, one client per thread
/// (they are handed out in turn), then stops it with SIGTERM.
fn serve_and_drain(threads: usize) {
    let server = Server::start(Flavor::Valkey);
    let port = free_port();
    let path = std::env::temp_dir().join(format!("vp-cli-serve-{}-{threads}.toml", std::process::id()));
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:{port}\"\nbackends = [\"{}\"]\nthreads = {threads}\n",
            server.addr()
        ),
    )
    .unwrap();
    let mut child = common::start_listening(&path);
    let streams: Vec<TcpStream> = (0..threads)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            stream.write_all(b"SET cli works\r\nGET cli\r\n").unwrap();
            let mut reply = [0u8; 64];
            let mut got = 0;
            while got < 16 {
                got += stream.read(&mut reply[got..]).unwrap();
            }
            assert_eq!(&reply[..got], b"+OK\r\n$5\r\nworks\r\n");
            stream
        })
        .collect();

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the proxy did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = std::fs::remove_file(&path);
    assert_eq!(exit.code(), Some(0));
    // The clients were told nothing went wrong: the connections are closed cleanly.
    for mut stream in streams {
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        assert!(rest.is_empty());
    }
}
