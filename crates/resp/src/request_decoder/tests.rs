use super::*;

fn decoder() -> RequestDecoder {
    let mut decoder = RequestDecoder::new(Limits::default());
    decoder.set_authenticated(true);
    decoder
}

fn args(request: &Request) -> Vec<&[u8]> {
    request.args().iter().collect()
}

fn first_error(input: &[u8]) -> Error {
    let mut buf = BytesMut::from(input);
    let mut decoder = decoder();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error for {:?}", String::from_utf8_lossy(input)),
            Err(e) => return e,
        }
    }
}

fn reply_of(input: &[u8]) -> String {
    String::from_utf8_lossy(&first_error(input).client_reply().expect("a reply")).into_owned()
}

#[test]
fn decodes_multibulk_and_keeps_raw_bytes() {
    let input = b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n";
    let mut buf = BytesMut::from(&input[..]);
    let request = decoder().decode(&mut buf).unwrap().unwrap();
    assert_eq!(args(&request), [&b"GET"[..], b"hello"]);
    assert_eq!(&request.raw()[..], &input[..]);
    assert!(buf.is_empty());
}

#[test]
fn decodes_inline_as_multibulk() {
    let requests = decode_all(b"set k \"a b\"\r\nPING\n").unwrap();
    assert_eq!(args(&requests[0]), [&b"set"[..], b"k", b"a b"]);
    assert_eq!(
        &requests[0].raw()[..],
        b"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$3\r\na b\r\n"
    );
    assert_eq!(args(&requests[1]), [&b"PING"[..]]);
}

#[test]
fn skips_empty_queries_like_valkey() {
    let requests = decode_all(b"\r\n*-10\r\n*0\r\n   \r\n*1\r\n$4\r\nPING\r\n").unwrap();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].is("ping"));
}

#[test]
fn waits_for_incomplete_input() {
    let input = b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n";
    let mut decoder = decoder();
    let mut buf = BytesMut::new();
    for (i, byte) in input.iter().enumerate() {
        buf.extend_from_slice(&[*byte]);
        let got = decoder.decode(&mut buf).unwrap();
        assert_eq!(got.is_some(), i == input.len() - 1, "byte {i}");
    }
}

#[test]
fn protocol_errors_have_valkeys_texts() {
    // The cases of Valkey's tests/unit/protocol.tcl.
    assert_eq!(
        reply_of(b"*3000000000\r\n"),
        "-ERR Protocol error: invalid multibulk length\r\n"
    );
    assert_eq!(
        reply_of(b"*20000000000000000000\r\n"),
        "-ERR Protocol error: invalid multibulk length\r\n"
    );
    assert_eq!(
        reply_of(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"),
        "-ERR Protocol error: expected '$', got 'f'\r\n"
    );
    assert_eq!(
        reply_of(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n"),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_eq!(
        reply_of(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n"),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_eq!(
        reply_of(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n"),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_eq!(
        reply_of(b"*1\r\nfoo\r\n"),
        "-ERR Protocol error: expected '$', got 'f'\r\n"
    );
    assert_eq!(
        reply_of(b"set \"\"\"test-key\"\"\" test-value\r\nping\r\n"),
        "-ERR Protocol error: unbalanced quotes in request\r\n"
    );
}

#[test]
fn long_lines_without_end_are_refused() {
    // Valkey's "Protocol desync regression test": a header or inline request
    // that never ends must not be buffered forever.
    let zeros = vec![b'0'; INLINE_MAX_SIZE + 1];
    for (prefix, expected) in [
        (&b"\x00"[..], "too big inline request"),
        (b"*\x00", "too big mbulk count string"),
        (b"*1\r\n$\x00", "too big bulk count string"),
    ] {
        let mut input = prefix.to_vec();
        input.extend_from_slice(&zeros);
        assert!(reply_of(&input).contains(expected), "{expected}");
    }
}

#[test]
fn unauthenticated_clients_get_lower_limits() {
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut buf = BytesMut::from(&b"*11\r\n"[..]);
    assert!(matches!(
        decoder.decode(&mut buf),
        Err(Error::UnauthenticatedMultibulkLength)
    ));
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut buf = BytesMut::from(&b"*2\r\n$4\r\nAUTH\r\n$16385\r\n"[..]);
    assert!(matches!(
        decoder.decode(&mut buf),
        Err(Error::UnauthenticatedBulkLength)
    ));
}

#[test]
fn query_buffer_limit_closes_without_reply() {
    let limits = Limits {
        max_query_buffer: 100,
        ..Limits::default()
    };
    let mut decoder = RequestDecoder::new(limits);
    decoder.set_authenticated(true);
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$1000\r\n"[..]);
    assert!(decoder.decode(&mut buf).unwrap().is_none());
    buf.extend_from_slice(&[b'x'; 200]);
    let error = decoder.decode(&mut buf).unwrap_err();
    assert!(matches!(error, Error::QueryBufferLimit { .. }));
    assert!(error.client_reply().is_none());
}

#[test]
fn many_arguments_are_decoded() {
    let mut input = b"*10001\r\n$5\r\nRPUSH\r\n".to_vec();
    for _ in 0..10_000 {
        input.extend_from_slice(b"$1\r\nx\r\n");
    }
    let requests = decode_all(&input).unwrap();
    assert_eq!(requests[0].len(), 10_001);
}

#[test]
fn headers_the_quick_path_passes_on_get_valkeys_errors() {
    // Leading zeros, signs, too many digits and lengths over the limit are
    // not the plain case; the full path answers them as Valkey does.
    assert_eq!(
        reply_of(b"*1\r\n$01\r\nx\r\n"),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_eq!(
        reply_of(b"*1\r\n$-1\r\n"),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_eq!(
        reply_of(b"*1\r\n$+1\r\nx\r\n"),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_eq!(
        reply_of(b"*1\r\n$\r\n"),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_eq!(
        reply_of(b"*1\r\n$9999999999\r\n"),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_eq!(
        reply_of(b"*1\r\n$536870913\r\n"),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_eq!(
        reply_of(b"*01\r\n"),
        "-ERR Protocol error: invalid multibulk length\r\n"
    );
    assert_eq!(
        reply_of(b"*2147483648\r\n"),
        "-ERR Protocol error: invalid multibulk length\r\n"
    );
    // The plain case itself, with an empty argument and a zero count.
    let requests = decode_all(b"*0\r\n*2\r\n$0\r\n\r\n$10\r\n0123456789\r\n").unwrap();
    assert_eq!(args(&requests[0]), [&b""[..], b"0123456789"]);
}
