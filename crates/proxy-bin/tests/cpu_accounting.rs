//! The CPU time the proxy charges to commands adds up to what the process
//! used, and a command that costs the proxy more work shows it: a 100-key
//! MGET across the slots of a 3-primary cluster against a plain GET, under
//! redis-benchmark, the proxy being the binary in a process of its own.

mod common;

use std::process::Command;

use test_util::{ports::free_port, Cluster, Flavor};

/// The proxy process's user and system CPU time, in seconds.
fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn stats(admin: u16) -> serde_json::Value {
    let output = Command::new("curl")
        .args(["-sf", &format!("http://127.0.0.1:{admin}/stats")])
        .output()
        .expect("curl is installed");
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

fn benchmark(port: u16, args: &[&str]) {
    let output = Command::new("redis-benchmark")
        .args(["-p", &port.to_string(), "-c", "20", "-P", "4", "-q"])
        .args(args)
        .output()
        .expect("redis-benchmark is installed (scripts/install-deps.sh)");
    let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !text.to_lowercase().contains("error"),
        "{text}"
    );
}

#[test]
fn charged_cpu_adds_up_to_the_process_and_a_100_key_mget_costs_more_than_a_get() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let (port, admin) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("vp-cpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("proxy.toml");
    let backends: Vec<String> = cluster.addrs().iter().map(|addr| format!("\"{addr}\"")).collect();
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{admin}\"\nbackends = [{}]\n",
            backends.join(", ")
        ),
    )
    .unwrap();
    let mut proxy = common::start_listening(&config);
    let keys: Vec<String> = (0..100).map(|i| format!("key{i}")).collect();
    let mut mset = vec!["MSET"];
    for key in &keys {
        mset.extend([key.as_str(), "value"]);
    }
    benchmark(port, &[&["-n", "1"][..], &mset].concat());

    let cpu_before = process_cpu_seconds(proxy.id());
    let charged_before: f64 = charged(&stats(admin));
    benchmark(port, &["-n", "200000", "GET", "key1"]);
    let mut mget = vec!["-n", "5000", "MGET"];
    mget.extend(keys.iter().map(String::as_str));
    benchmark(port, &mget);
    let stats = stats(admin);
    let used = process_cpu_seconds(proxy.id()) - cpu_before;
    let charged = charged(&stats) - charged_before;
    let commands = &stats["commands"];
    let per_call =
        |name: &str| commands[name]["cpu_usec"].as_f64().unwrap() / commands[name]["calls"].as_f64().unwrap();
    let work_p50 = |name: &str| commands[name]["work_usec"]["p50"].as_f64().unwrap();
    eprintln!(
        "process {used:.3} s, charged {charged:.3} s; per call: get {:.2} us, mget {:.2} us; own work p50: get {:.2} us, mget {:.2} us",
        per_call("get"),
        per_call("mget"),
        work_p50("get"),
        work_p50("mget"),
    );
    assert!(
        (charged / used - 1.0).abs() <= 0.2,
        "charged {charged:.3} s of the process's {used:.3} s"
    );
    assert!(work_p50("mget") > 4.0 * work_p50("get"));
    assert!(per_call("mget") > 4.0 * per_call("get"));
    let _ = proxy.kill();
    let _ = proxy.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The CPU time charged to every command so far, in seconds.
fn charged(stats: &serde_json::Value) -> f64 {
    stats["commands"]
        .as_object()
        .unwrap()
        .values()
        .map(|command| command["cpu_usec"].as_f64().unwrap())
        .sum::<f64>()
        / 1e6
}
