use super::*;
use crate::Frame;

fn scan_all(input: &[u8]) -> Vec<Bytes> {
    let mut decoder = ReplyDecoder::default();
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    while let Some(reply) = decoder.decode(&mut buf).unwrap() {
        out.push(reply);
    }
    assert!(buf.is_empty(), "left over: {:?}", buf);
    out
}

#[test]
fn splits_every_type() {
    let replies: &[&[u8]] = &[
        b"+OK\r\n",
        b"-ERR bad\r\n",
        b":42\r\n",
        b"$5\r\nhello\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"*0\r\n",
        b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
        b"_\r\n",
        b"#t\r\n",
        b",3.14\r\n",
        b"(12345678901234567890\r\n",
        b"!3\r\nerr\r\n",
        b"=7\r\ntxt:abc\r\n",
        b"%1\r\n+k\r\n:1\r\n",
        b"~2\r\n+a\r\n+b\r\n",
        b">2\r\n+message\r\n+x\r\n",
        b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
        b"*1\r\n|1\r\n+a\r\n+b\r\n:5\r\n",
        b"$?\r\n;2\r\nab\r\n;1\r\nc\r\n;0\r\n",
        b"*?\r\n:1\r\n*?\r\n.\r\n.\r\n",
        b"%?\r\n+a\r\n:1\r\n.\r\n",
    ];
    let input: Vec<u8> = replies.concat();
    let found = scan_all(&input);
    assert_eq!(found.len(), replies.len());
    for (got, want) in found.iter().zip(replies) {
        assert_eq!(&got[..], *want);
    }
}

#[test]
fn any_split_gives_the_same_replies() {
    let input = b"*3\r\n$3\r\nfoo\r\n%1\r\n+k\r\n*1\r\n:1\r\n$?\r\n;1\r\nx\r\n;0\r\n+OK\r\n";
    for step in 1..input.len() {
        let mut decoder = ReplyDecoder::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in input.chunks(step) {
            buf.extend_from_slice(chunk);
            while let Some(reply) = decoder.decode(&mut buf).unwrap() {
                out.push(reply);
            }
        }
        assert_eq!(out.len(), 2, "step {step}");
        assert_eq!(&out[1][..], b"+OK\r\n");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let input = b"*1\r\n".repeat(10_000);
    let mut decoder = ReplyDecoder::default();
    let mut buf = BytesMut::from(&input[..]);
    assert!(matches!(decoder.decode(&mut buf), Err(Error::ReplyTooDeep(_))));
}

#[test]
fn garbage_is_an_error() {
    // Found by the fuzzer: a line with no type byte.
    let mut buf = BytesMut::from(&b"\r\n"[..]);
    assert!(ReplyDecoder::default().decode(&mut buf).is_err());
    assert!(Frame::parse(&Bytes::from_static(b"\r\n")).is_err());
    let mut buf = BytesMut::from(&b"?what\r\n"[..]);
    assert!(matches!(
        ReplyDecoder::default().decode(&mut buf),
        Err(Error::InvalidReplyType(b'?'))
    ));
    let mut buf = BytesMut::from(&b"$abc\r\n"[..]);
    assert!(ReplyDecoder::default().decode(&mut buf).is_err());
}
