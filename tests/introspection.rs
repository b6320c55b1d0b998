//! What tools that read a Valkey server read (redis_exporter: `INFO
//! commandstats`, `INFO latencystats`, `LATENCY HISTOGRAM`) describes the
//! proxy's clients' commands, in the shapes a server gives.

mod common;

use common::{show, RawClient, TestProxy};
use resp::Frame;
use test_util::{Flavor, Server};

/// The shape of a frame: its types, with every integer and string
/// replaced (map keys that are strings kept).
fn shape(frame: &Frame) -> String {
    match frame {
        Frame::Map(pairs) => {
            let inner: Vec<String> = pairs
                .iter()
                .take(1)
                .map(|(key, value)| {
                    let key = match key {
                        Frame::Bulk(text) => format!("\"{}\"", String::from_utf8_lossy(text)),
                        other => shape(other),
                    };
                    format!("{key}: {}", shape(value))
                })
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Frame::Array(items) => format!("[{}]", items.first().map(shape).unwrap_or_default()),
        Frame::Integer(_) => "int".into(),
        Frame::Bulk(_) => "bulk".into(),
        other => show(other),
    }
}

fn info_line<'a>(info: &'a Frame, prefix: &str) -> Option<&'a str> {
    let (Frame::Bulk(text) | Frame::Verbatim { text, .. }) = info else {
        panic!("INFO gave {}", show(info))
    };
    std::str::from_utf8(text)
        .unwrap()
        .lines()
        .find(|line| line.starts_with(prefix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_and_latency_histogram_describe_the_clients_commands() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    for i in 0..100 {
        client.call(&["GET", &format!("k{i}")]).await;
    }
    client.call(&["SET", "k", "v"]).await;
    let stats = client.call(&["INFO", "commandstats"]).await;
    let get = info_line(&stats, "cmdstat_get:").unwrap_or_else(|| panic!("{}", show(&stats)));
    assert!(get.starts_with("cmdstat_get:calls=100,usec="), "{get}");
    assert!(get.ends_with(",rejected_calls=0,failed_calls=0"), "{get}");
    let latency = client.call(&["INFO", "latencystats"]).await;
    let line = info_line(&latency, "latency_percentiles_usec_get:").unwrap();
    assert!(
        line.contains(":p50=") && line.contains(",p99=") && line.contains(",p99.9="),
        "{line}"
    );

    // Only GET asked for: GET only, with its calls and cumulative buckets.
    assert!(!client.call(&["HELLO", "3"]).await.is_error());
    let histogram = client.call(&["LATENCY", "HISTOGRAM", "get"]).await;
    let Frame::Map(commands) = &histogram else {
        panic!("{}", show(&histogram))
    };
    assert_eq!(commands.len(), 1, "{}", show(&histogram));
    let Frame::Map(fields) = &commands[0].1 else {
        panic!()
    };
    assert_eq!(fields[0], (Frame::Bulk("calls".into()), Frame::Integer(100)));
    let Frame::Map(buckets) = &fields[1].1 else {
        panic!()
    };
    let counts: Vec<i64> = buckets
        .iter()
        .map(|(_, count)| match count {
            Frame::Integer(count) => *count,
            _ => -1,
        })
        .collect();
    assert!(counts.windows(2).all(|pair| pair[0] < pair[1]), "{counts:?}");
    assert_eq!(counts.last(), Some(&100));

    // The shape a server gives, in RESP3 and RESP2.
    for protocol in ["3", "2"] {
        let mut direct = RawClient::connect(&server.addr()).await;
        assert!(!direct.call(&["HELLO", protocol]).await.is_error());
        direct.call(&["GET", "k"]).await;
        let expected = direct.call(&["LATENCY", "HISTOGRAM", "get"]).await;
        assert!(!client.call(&["HELLO", protocol]).await.is_error());
        let got = client.call(&["LATENCY", "HISTOGRAM", "get"]).await;
        assert_eq!(shape(&got), shape(&expected), "RESP{protocol}");
    }
    proxy.stop().await;
}
