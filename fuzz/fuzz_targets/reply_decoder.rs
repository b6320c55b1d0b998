//! Any bytes must scan and parse as replies without panic, and every reply
//! the scanner returns must parse as one frame.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use valkey_proxy_resp::{Frame, Limits, ReplyDecoder};

fuzz_target!(|data: &[u8]| {
    let mut decoder = ReplyDecoder::new(Limits::default());
    let mut buf = BytesMut::from(data);
    while let Ok(Some(reply)) = decoder.decode(&mut buf) {
        assert!(Frame::parse_complete(&reply).is_ok(), "{reply:?}");
    }
    let _ = Frame::parse(&Bytes::copy_from_slice(data));
});
