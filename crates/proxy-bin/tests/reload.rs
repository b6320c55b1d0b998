//! Live reload of the binary's configuration file, through SIGHUP and
//! `PROXY CONFIG RELOAD [DRYRUN]`, as an operator uses it: users added,
//! removed and changed, a broken file, a setting that needs a restart, and
//! the read policy flipped under load without an error or a closed client.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use test_util::{ports::free_port, Flavor, Server};

/// The file: the backend, and `users` as TOML `[[users]]` entries.
fn write_config(path: &Path, port: u16, backend: &str, extra: &str, users: &[(&str, &str, &str)]) {
    let mut text = format!("listen = \"127.0.0.1:{port}\"\nbackends = [\"{backend}\"]\n{extra}\n");
    for (name, password, acl) in users {
        text.push_str(&format!(
            "[[users]]\nname = \"{name}\"\npassword = \"{password}\"\n"
        ));
        if !acl.is_empty() {
            text.push_str(&format!("acl = \"{acl}\"\n"));
        }
    }
    std::fs::write(path, text).unwrap();
}

/// A client on its own connection, speaking RESP2.
struct Client {
    stream: BufReader<TcpStream>,
}

impl Client {
    fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client {
            stream: BufReader::new(stream),
        }
    }

    /// Sends a command and reads one reply, as text: `+OK`, `-ERR ...`,
    /// `:1`, `$value`, or `*a|b|c` for an array of lines; `closed` when
    /// the proxy closed the connection.
    fn call(&mut self, args: &[&str]) -> String {
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        if self.stream.get_mut().write_all(request.as_bytes()).is_err() {
            return "closed".into();
        }
        self.reply()
    }

    fn reply(&mut self) -> String {
        let mut line = String::new();
        if self.stream.read_line(&mut line).unwrap_or(0) == 0 {
            return "closed".into();
        }
        let line = line.trim_end().to_string();
        match line.as_bytes().first() {
            Some(b'$' | b'=') => {
                let len: i64 = line[1..].parse().unwrap();
                if len < 0 {
                    return "$nil".into();
                }
                let mut body = vec![0u8; len as usize + 2];
                self.stream.read_exact(&mut body).unwrap();
                format!("${}", String::from_utf8_lossy(&body[..len as usize]))
            }
            Some(b'*') => {
                let count: usize = line[1..].parse().unwrap();
                let items: Vec<String> = (0..count).map(|_| self.reply()).collect();
                format!("*{}", items.join("|"))
            }
            _ => line,
        }
    }
}

fn logged_in(port: u16, user: &str, password: &str) -> Client {
    let mut client = Client::connect(port);
    assert_eq!(client.call(&["AUTH", user, password]), "+OK");
    client
}

fn hash(admin: &mut Client) -> String {
    let shown = admin.call(&["PROXY", "CONFIG", "GET"]);
    shown
        .split("config_hash:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no hash in {shown}"))
        .to_string()
}

fn hangup(proxy: &Child) {
    let status = Command::new("kill")
        .args(["-HUP", &proxy.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Retries `attempt` until it is true, for at most five seconds.
fn eventually(what: &str, mut attempt: impl FnMut() -> bool) {
    let start = Instant::now();
    while !attempt() {
        assert!(start.elapsed() < Duration::from_secs(5), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Setup {
    _server: Server,
    backend: String,
    port: u16,
    dir: std::path::PathBuf,
    file: std::path::PathBuf,
    proxy: Child,
}

impl Setup {
    fn start(name: &str, users: &[(&str, &str, &str)]) -> Setup {
        Setup::start_with(name, "", users)
    }

    /// As [`Setup::start`], with `extra` settings in the file.
    fn start_with(name: &str, extra: &str, users: &[(&str, &str, &str)]) -> Setup {
        let server = Server::start(Flavor::Valkey);
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("vp-reload-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("proxy.toml");
        write_config(&file, port, &server.addr(), extra, users);
        let proxy = common::start_listening(&file);
        Setup {
            backend: server.addr(),
            _server: server,
            port,
            dir,
            file,
            proxy,
        }
    }

    fn rewrite(&self, extra: &str, users: &[(&str, &str, &str)]) {
        write_config(&self.file, self.port, &self.backend, extra, users);
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn users_come_go_and_change_and_a_broken_file_changes_nothing() {
    let ops = ("ops", "ops-pw", "");
    let app = ("app", "app-pw", "");
    let setup = Setup::start("users", &[ops, app]);
    let mut admin = logged_in(setup.port, "ops", "ops-pw");
    let before = hash(&mut admin);
    let mut app_client = logged_in(setup.port, "app", "app-pw");

    // A user added, SIGHUP: it logs in.
    setup.rewrite("", &[ops, app, ("new", "new-pw", "")]);
    hangup(&setup.proxy);
    eventually("the new user logs in", || {
        Client::connect(setup.port).call(&["AUTH", "new", "new-pw"]) == "+OK"
    });
    let added = hash(&mut admin);
    assert_ne!(added, before);

    // A broken file: the reply says why, nothing changes.
    std::fs::write(&setup.file, "listen = [\n").unwrap();
    let refused = admin.call(&["PROXY", "CONFIG", "RELOAD"]);
    assert!(
        refused.starts_with("-ERR config not reloaded, nothing changed:"),
        "{refused}"
    );
    assert_eq!(hash(&mut admin), added);
    assert_eq!(app_client.call(&["SET", "k", "v"]), "+OK");

    // A setting that needs a restart: listed by DRYRUN, and not applied.
    setup.rewrite("threads = 7", &[ops, app, ("new", "new-pw", "")]);
    let listed = admin.call(&["PROXY", "CONFIG", "RELOAD", "DRYRUN"]);
    assert!(listed.contains("! threads: "), "{listed}");
    assert!(
        listed.contains("-> 7 (restart required, not applied)"),
        "{listed}"
    );
    assert_eq!(hash(&mut admin), added);

    // app's password changed: its open connection is closed, the old
    // password no longer logs in, the new one does; new's rules now deny
    // GET, from its next command on, without closing it.
    let mut new_client = logged_in(setup.port, "new", "new-pw");
    setup.rewrite(
        "",
        &[
            ops,
            ("app", "rotated", ""),
            ("new", "new-pw", "on +@all -get ~* &*"),
        ],
    );
    let applied = admin.call(&["PROXY", "CONFIG", "RELOAD"]);
    assert!(applied.contains("~ users: app (passwords)"), "{applied}");
    assert!(applied.contains("~ users: new (rules)"), "{applied}");
    assert_eq!(app_client.call(&["PING"]), "closed");
    assert!(Client::connect(setup.port)
        .call(&["AUTH", "app", "app-pw"])
        .starts_with("-WRONGPASS"));
    logged_in(setup.port, "app", "rotated");
    let denied = new_client.call(&["GET", "k"]);
    assert!(denied.starts_with("-NOPERM"), "{denied}");
    assert_eq!(new_client.call(&["SET", "k", "w"]), "+OK");

    // new removed: its connection is closed.
    setup.rewrite("", &[ops, ("app", "rotated", "")]);
    hangup(&setup.proxy);
    eventually("the removed user's client is closed", || {
        new_client.call(&["PING"]) == "closed"
    });
    assert_eq!(admin.call(&["PING"]), "+PONG");
}

#[test]
fn reloads_under_load_cost_other_clients_no_error_and_no_connection() {
    let ops = ("ops", "pw", "");
    let extra = ("extra", "extra-pw", "");
    let setup = Setup::start("load", &[ops]);
    let mut admin = logged_in(setup.port, "ops", "pw");
    let port = setup.port.to_string();
    let load = std::thread::spawn(move || {
        Command::new("redis-benchmark")
            .args([
                "-p", &port, "--user", "ops", "-a", "pw", "-c", "50", "-n", "400000",
            ])
            .args(["-t", "get,set", "-P", "4", "-q"])
            .output()
            .expect("redis-benchmark is installed (scripts/install-deps.sh)")
    });
    std::thread::sleep(Duration::from_millis(300));
    // In turn: the read policy flipped with a user added, flipped back
    // with it removed (its client closed), a limit changed, a broken file
    // (refused), the limit back.
    let mut reloads = 0;
    while !load.is_finished() && reloads < 40 {
        let mut extra_client = None;
        let expected = match reloads % 5 {
            0 => {
                setup.rewrite("read_policy = \"prefer-replica\"", &[ops, extra]);
                "+ users: extra"
            }
            1 => {
                extra_client = Some(logged_in(setup.port, "extra", "extra-pw"));
                setup.rewrite("", &[ops]);
                "- users: extra"
            }
            2 => {
                setup.rewrite("max_pipeline = 512", &[ops]);
                "~ max_pipeline: 1024 -> 512"
            }
            3 => {
                std::fs::write(&setup.file, "max_pipeline = \"lots\"\n").unwrap();
                "-ERR config not reloaded, nothing changed"
            }
            _ => {
                setup.rewrite("", &[ops]);
                "~ max_pipeline: 512 -> 1024"
            }
        };
        let reply = admin.call(&["PROXY", "CONFIG", "RELOAD"]);
        assert!(reply.contains(expected), "{reply}");
        if let Some(mut removed) = extra_client {
            assert_eq!(removed.call(&["PING"]), "closed");
        }
        reloads += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = load.join().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    // redis-benchmark says "Server closed the connection" (an error) for
    // any client the proxy closed.
    assert!(!text.to_lowercase().contains("error"), "{text}");
    assert!(
        reloads >= 5,
        "the load ended before the reloads ({reloads}): {text}"
    );
}

#[test]
fn a_tenants_limits_change_live_and_its_namespace_waits_for_a_restart() {
    let ops = ("ops", "pw", "");
    let tenant = |limits: &str, prefix: &str| {
        format!(
            "[[tenants]]\nname = \"shop\"\nprefix = \"{prefix}\"\n{limits}\n\n\
             [[users]]\nname = \"shop-app\"\npassword = \"s\"\ntenant = \"shop\"\n"
        )
    };
    let setup = Setup::start_with("tenant-limits", &tenant("", "shop:"), &[ops]);
    let mut admin = logged_in(setup.port, "ops", "pw");
    let mut first = logged_in(setup.port, "shop-app", "s");
    let _second = logged_in(setup.port, "shop-app", "s");

    // One client at most from now on: the two connected stay, a third is
    // refused; ops per second limited, seen by the next commands.
    setup.rewrite(
        &tenant("max_clients = 1\nmax_ops_per_sec = 1\nmax_queue_ms = 0", "shop:"),
        &[ops],
    );
    let applied = admin.call(&["PROXY", "CONFIG", "RELOAD"]);
    assert!(
        applied.contains("~ tenants: shop (max_clients 0 -> 1)"),
        "{applied}"
    );
    assert!(
        applied.contains("~ tenants: shop (max_ops_per_sec 0 -> 1)"),
        "{applied}"
    );
    let third = Client::connect(setup.port).call(&["AUTH", "shop-app", "s"]);
    assert_eq!(third, "-ERR max number of clients reached");
    let replies: Vec<String> = (0..5).map(|_| first.call(&["SET", "k", "v"])).collect();
    assert!(
        replies.iter().any(|reply| reply.contains("over max_ops_per_sec")),
        "{replies:?}"
    );

    // Another prefix moves the tenant's keys: only after a restart.
    setup.rewrite(
        &tenant("max_clients = 1\nmax_ops_per_sec = 1\nmax_queue_ms = 0", "store:"),
        &[ops],
    );
    let listed = admin.call(&["PROXY", "CONFIG", "RELOAD", "DRYRUN"]);
    assert!(
        listed.contains("! tenants: (...) -> (...) (restart required, not applied)"),
        "{listed}"
    );
}

#[test]
fn a_reload_and_a_refused_one_are_audited() {
    let ops = ("ops", "pw", "");
    let dir = std::env::temp_dir().join(format!("vp-reload-audited-{}", std::process::id()));
    let log = dir.join("audit.jsonl");
    let audit = format!(
        "[audit]\nevents = [\"admin\"]\n\n[[audit.sinks]]\ntype = \"file\"\npath = \"{}\"\nfsync = \"always\"\n",
        log.display()
    );
    let setup = Setup::start_with("audited", &audit, &[ops]);
    let mut admin = logged_in(setup.port, "ops", "pw");
    setup.rewrite(&format!("max_clients = 77\n{audit}"), &[ops]);
    assert!(admin
        .call(&["PROXY", "CONFIG", "RELOAD"])
        .contains("~ max_clients: 10000 -> 77"));
    std::fs::write(&setup.file, "max_clients = \"many\"\n").unwrap();
    assert!(admin.call(&["PROXY", "CONFIG", "RELOAD"]).starts_with("-ERR"));
    let records = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .filter(|record: &serde_json::Value| record["event"] == "config_reload")
            .collect()
    };
    eventually("both reloads are in the audit log", || records().len() == 2);
    let reloads = records();
    assert_eq!(reloads[0]["result"], "ok");
    assert_eq!(reloads[0]["changes"][0], "~ max_clients: 10000 -> 77");
    assert!(reloads[0]["hash"].as_str().is_some_and(|hash| hash.len() == 64));
    assert_eq!(reloads[1]["result"], "error");
    assert!(
        reloads[1]["error"].as_str().unwrap().contains("max_clients"),
        "{}",
        reloads[1]
    );
}
