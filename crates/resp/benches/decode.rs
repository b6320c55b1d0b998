//! Decode throughput: pipelined small requests, one huge request arriving in
//! 16 KiB reads (the case that is quadratic in a non-resumable parser), and
//! pipelined replies.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use valkey_proxy_resp::{encode_command, Limits, ReplyDecoder, RequestDecoder};

fn pipelined_requests() -> Vec<u8> {
    let mut out = BytesMut::new();
    for i in 0..1000 {
        let key = format!("key:{i}");
        encode_command(&["SET", key.as_str(), "value-value-value"], &mut out);
        encode_command(&["GET", key.as_str()], &mut out);
    }
    out.to_vec()
}

fn huge_request() -> Vec<u8> {
    let args: Vec<String> = std::iter::once("RPUSH".to_string())
        .chain(std::iter::once("list".to_string()))
        .chain((0..300_000).map(|i| format!("v{i}")))
        .collect();
    let mut out = BytesMut::new();
    encode_command(&args, &mut out);
    out.to_vec()
}

fn decode_requests(input: &[u8], read_size: usize) -> usize {
    let mut decoder = RequestDecoder::new(Limits::default());
    decoder.set_authenticated(true);
    let mut buf = BytesMut::with_capacity(read_size);
    let mut count = 0;
    for chunk in input.chunks(read_size) {
        buf.extend_from_slice(chunk);
        while let Some(request) = decoder.decode(&mut buf).expect("valid input") {
            count += request.len();
        }
    }
    count
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_decoder");
    let pipelined = pipelined_requests();
    group.throughput(Throughput::Bytes(pipelined.len() as u64));
    group.bench_function("2000 pipelined GET/SET, 16 KiB reads", |b| {
        b.iter(|| decode_requests(black_box(&pipelined), 16 * 1024))
    });
    let huge = huge_request();
    group.throughput(Throughput::Bytes(huge.len() as u64));
    group.bench_function("one 300k-argument RPUSH, 16 KiB reads", |b| {
        b.iter(|| decode_requests(black_box(&huge), 16 * 1024))
    });
    group.finish();

    let mut group = c.benchmark_group("reply_decoder");
    let mut replies = BytesMut::new();
    for i in 0..1000 {
        replies.extend_from_slice(b"+OK\r\n");
        replies.extend_from_slice(format!("$17\r\nvalue-value-{i:05}\r\n").as_bytes());
        replies.extend_from_slice(b"*3\r\n$1\r\na\r\n:1\r\n%1\r\n+k\r\n+v\r\n");
    }
    let replies = replies.to_vec();
    group.throughput(Throughput::Bytes(replies.len() as u64));
    group.bench_function("3000 pipelined replies, 16 KiB reads", |b| {
        b.iter(|| {
            let mut decoder = ReplyDecoder::new(Limits::default());
            let mut buf = BytesMut::new();
            let mut count = 0;
            for chunk in black_box(&replies).chunks(16 * 1024) {
                buf.extend_from_slice(chunk);
                while let Some(reply) = decoder.decode(&mut buf).expect("valid input") {
                    count += reply.len();
                }
            }
            count
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
