//! Routing cost: table lookup, key extraction, slot and route for common
//! commands against a 3-shard cluster topology.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use resp::Request;
use std::hint::black_box;
use topology::{Shard, Topology};
use valkey_proxy_router::{select, CommandTable};

fn request(args: &[&str]) -> Request {
    Request::from_args(args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())))
}

fn bench(c: &mut Criterion) {
    let table = CommandTable::builtin();
    let shard = |addr: &str| Shard {
        primary: addr.into(),
        replicas: vec![],
    };
    let topology = Topology::cluster(
        vec![
            (0, 5460, shard("a:1")),
            (5461, 10922, shard("b:1")),
            (10923, 16383, shard("c:1")),
        ],
        1,
    );
    let mut group = c.benchmark_group("select");
    for args in [
        &["GET", "user:1000:profile"][..],
        &["SET", "user:1000:profile", "some value"],
        &[
            "MGET", "{u}a", "{u}b", "{u}c", "{u}d", "{u}e", "{u}f", "{u}g", "{u}h",
        ],
        &["CONFIG", "GET", "maxmemory"],
    ] {
        let request = request(args);
        group.bench_function(args[0], |b| {
            b.iter(|| {
                let spec = table.lookup(black_box(&request));
                select(&request, spec.map(|s| &**s), black_box(&topology))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
