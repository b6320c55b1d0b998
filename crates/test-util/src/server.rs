//! One server process on a free port, in its own directory, killed and
//! removed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::client::command;
use crate::ports::free_port;
use crate::Flavor;

static SERIAL: AtomicUsize = AtomicUsize::new(0);

/// A running `valkey-server` or `redis-server`.
#[derive(Debug)]
pub struct Server {
    flavor: Flavor,
    port: u16,
    bus_port: Option<u16>,
    dir: PathBuf,
    extra: Vec<(String, String)>,
    child: Option<Child>,
}

impl Server {
    /// Starts a standalone server.
    pub fn start(flavor: Flavor) -> Server {
        Server::start_with(flavor, &[])
    }

    /// Starts a server with extra configuration directives
    /// (`("cluster-enabled", "yes")`, ...).
    ///
    /// # Panics
    /// The binary is missing or the server does not come up.
    pub fn start_with(flavor: Flavor, extra: &[(&str, &str)]) -> Server {
        let cluster = extra.iter().any(|(k, v)| *k == "cluster-enabled" && *v == "yes");
        for _attempt in 0..5 {
            let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("vp-test-{}-{serial}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("create a server directory");
            let mut server = Server {
                flavor,
                port: free_port(),
                bus_port: cluster.then(free_port),
                dir,
                extra: extra
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                child: None,
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("{flavor:?} server did not start after 5 attempts");
    }

    /// Starts the process and waits until it answers PING; false if it died
    /// (usually: the port was taken in the meantime).
    fn spawn(&mut self) -> bool {
        let mut cmd = Command::new(self.flavor.binary());
        let port = self.port.to_string();
        cmd.args([
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--protected-mode", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(&self.dir)
        .arg("--logfile")
        .arg(self.dir.join("server.log"));
        if let Some(bus) = self.bus_port {
            cmd.args(["--cluster-port", &bus.to_string()]);
            cmd.args(["--cluster-config-file", "nodes.conf"]);
        }
        for (key, value) in &self.extra {
            cmd.arg(format!("--{key}")).arg(value);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", self.flavor.binary()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if let Ok(frame) = command(&self.addr(), &["PING"]) {
                let needs_auth = frame.as_bytes().is_some_and(|e| e.starts_with(b"NOAUTH"));
                if !frame.is_error() || needs_auth {
                    if !needs_auth && !self.answers_as(child.id()) {
                        // Another test's server took the port first; ours
                        // cannot bind it and will exit.
                        let _ = child.kill();
                        let _ = child.wait();
                        return false;
                    }
                    self.child = Some(child);
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// True when the server on this port is process `pid` (`INFO server`).
    fn answers_as(&self, pid: u32) -> bool {
        let Ok(info) = command(&self.addr(), &["INFO", "server"]) else {
            return false;
        };
        let text = info
            .as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        text.lines()
            .find_map(|line| line.strip_prefix("process_id:"))
            .is_some_and(|id| id.trim() == pid.to_string())
    }

    /// `127.0.0.1:<port>`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster bus port, for a cluster node.
    pub fn bus_port(&self) -> Option<u16> {
        self.bus_port
    }

    /// Which server this is.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Kills the process (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same ports and directory (a cluster
    /// node keeps its identity through `nodes.conf`).
    ///
    /// # Panics
    /// The server does not come back.
    pub fn restart(&mut self) {
        self.kill();
        for _ in 0..50 {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{} did not restart", self.addr());
    }

    /// Kills the process (SIGKILL) without waiting for it: for a fault
    /// injected while others hold the server ([`Server::kill`] reaps it).
    pub fn crash(&self) {
        self.signal("-KILL");
    }

    /// Suspends the process (SIGSTOP): it keeps its sockets but answers nothing.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Resumes a paused process (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    /// Sends a command and returns its reply.
    ///
    /// # Panics
    /// The server cannot be reached.
    pub fn command(&self, args: &[&str]) -> resp::Frame {
        command(&self.addr(), args).unwrap_or_else(|e| panic!("{args:?} on {}: {e}", self.addr()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.resume();
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
