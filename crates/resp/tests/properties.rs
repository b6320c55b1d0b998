//! Property tests: encoding then decoding gives back the same thing, and any
//! split of the input into reads, down to one byte, gives the same result.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use valkey_proxy_resp::{encode_command, Frame, Limits, Protocol, ReplyDecoder, RequestDecoder};

fn arg() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..40)
}

fn command() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(arg(), 1..8)
}

fn leaf() -> impl Strategy<Value = Frame> {
    let text = "[a-zA-Z0-9 :._-]{0,12}".prop_map(|s| Bytes::from(s.into_bytes()));
    prop_oneof![
        text.clone().prop_map(Frame::Simple),
        text.clone().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        arg().prop_map(|v| Frame::Bulk(Bytes::from(v))),
        Just(Frame::Null),
        any::<bool>().prop_map(Frame::Boolean),
        "-?[0-9]{1,5}\\.[0-9]{1,5}".prop_map(|s| Frame::Double(Bytes::from(s.into_bytes()))),
        "-?[1-9][0-9]{0,30}".prop_map(|s| Frame::BigNumber(Bytes::from(s.into_bytes()))),
        arg().prop_map(|v| Frame::BulkError(Bytes::from(v))),
        text.prop_map(|t| Frame::Verbatim {
            format: Bytes::from_static(b"txt"),
            text: t
        }),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    leaf().prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Frame::Array),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Frame::Set),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Frame::Push),
            proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Frame::Map),
        ]
    })
}

fn decode_requests_in_reads(input: &[u8], read: usize) -> Vec<Vec<Vec<u8>>> {
    let mut decoder = RequestDecoder::new(Limits::default());
    decoder.set_authenticated(true);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in input.chunks(read.max(1)) {
        buf.extend_from_slice(chunk);
        while let Some(request) = decoder.decode(&mut buf).unwrap() {
            out.push(request.args().iter().map(|a| a.to_vec()).collect());
        }
    }
    assert!(buf.is_empty());
    out
}

fn decode_replies_in_reads(input: &[u8], read: usize) -> Vec<Bytes> {
    let mut decoder = ReplyDecoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in input.chunks(read.max(1)) {
        buf.extend_from_slice(chunk);
        while let Some(reply) = decoder.decode(&mut buf).unwrap() {
            out.push(reply);
        }
    }
    assert!(buf.is_empty());
    out
}

proptest! {
    #[test]
    fn requests_round_trip_under_any_split(commands in proptest::collection::vec(command(), 1..6), read in 1usize..64) {
        let mut input = BytesMut::new();
        for command in &commands {
            encode_command(command, &mut input);
        }
        prop_assert_eq!(decode_requests_in_reads(&input, read), commands);
    }

    #[test]
    fn replies_round_trip_under_any_split(frames in proptest::collection::vec(frame(), 1..5), read in 1usize..64) {
        let mut input = BytesMut::new();
        for frame in &frames {
            frame.encode(Protocol::Resp3, &mut input);
        }
        let raw = decode_replies_in_reads(&input, read);
        prop_assert_eq!(raw.len(), frames.len());
        for (bytes, frame) in raw.iter().zip(&frames) {
            prop_assert_eq!(&Frame::parse_complete(bytes).unwrap(), frame);
        }
    }

    #[test]
    fn resp2_encoding_is_always_decodable(frame in frame()) {
        let bytes = frame.to_bytes(Protocol::Resp2);
        let raw = decode_replies_in_reads(&bytes, 7);
        prop_assert_eq!(raw.len(), 1);
        prop_assert!(Frame::parse_complete(&raw[0]).is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut decoder = RequestDecoder::new(Limits::default());
        let mut buf = BytesMut::from(&input[..]);
        while let Ok(Some(_)) = decoder.decode(&mut buf) {}
        let mut replies = ReplyDecoder::new(Limits::default());
        let mut buf = BytesMut::from(&input[..]);
        while let Ok(Some(_)) = replies.decode(&mut buf) {}
        let _ = Frame::parse(&Bytes::from(input));
    }
}

proptest! {
    /// A decoded request with some arguments prefixed is the request built
    /// from the prefixed arguments.
    #[test]
    fn prefixing_arguments_equals_building_them(
        args in command(),
        prefix in arg(),
        picks in proptest::collection::vec(any::<bool>(), 8),
    ) {
        let mut wire = BytesMut::new();
        encode_command(&args, &mut wire);
        let mut decoder = RequestDecoder::new(Limits::default());
        decoder.set_authenticated(true);
        let decoded = decoder.decode(&mut wire).unwrap().unwrap();
        let positions: Vec<usize> = (0..args.len()).filter(|&i| picks[i]).collect();
        let expected: Vec<Vec<u8>> = args
            .iter()
            .enumerate()
            .map(|(i, a)| if picks[i] { [&prefix[..], a].concat() } else { a.clone() })
            .collect();
        prop_assert_eq!(decoded.with_prefixed(&prefix, &positions), valkey_proxy_resp::Request::from_args(expected));
    }
}
