//! Any bytes, split into reads at any points, must decode without panic
//! and give the same requests as one read.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use valkey_proxy_resp::{Limits, RequestDecoder};

fn decode(chunks: &[&[u8]]) -> (Vec<Vec<Vec<u8>>>, bool) {
    let mut decoder = RequestDecoder::new(Limits::default());
    decoder.set_authenticated(true);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(request)) => out.push(request.args().iter().map(|a| a.to_vec()).collect()),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else { return };
    let at = usize::from(split) % (input.len() + 1);
    let whole = decode(&[input]);
    let split = decode(&[&input[..at], &input[at..]]);
    assert_eq!(whole, split);
});
