//! Cost of recording one request's statistics, from one thread and from
//! two threads recording the same command at once (what worker threads do
//! under a GET-heavy load).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use router::CommandTable;
use valkey_proxy_middleware::StatsRegistry;

fn bench(c: &mut Criterion) {
    let table = CommandTable::builtin();
    let registry = StatsRegistry::new(&table);
    let stats = registry.command("get");
    let mut group = c.benchmark_group("record");
    for threads in [1u32, 2] {
        group.bench_function(format!("{threads} thread(s)"), |b| {
            // Time per record per thread: each thread records `iters`.
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..threads {
                        let stats = stats.clone();
                        scope.spawn(move || {
                            for i in 0..iters {
                                let latency = Duration::from_micros(100 + i % 50);
                                stats.record(black_box(latency), None, false);
                            }
                        });
                    }
                });
                start.elapsed()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
