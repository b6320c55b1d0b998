//! tokio-util codecs over the decoders, for users who drive a socket with
//! `Framed`. The proxy's own hot paths call the decoders directly.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::{Error, Frame, Limits, Protocol, ReplyDecoder, Request, RequestDecoder};

/// Server side of a connection: decodes [`Request`]s, encodes [`Frame`]s or
/// raw reply bytes.
#[derive(Debug, Default)]
pub struct RequestCodec {
    decoder: RequestDecoder,
    protocol: Protocol,
}

impl RequestCodec {
    /// A codec with the given limits, for an authenticated client.
    pub fn new(limits: Limits) -> Self {
        let mut decoder = RequestDecoder::new(limits);
        decoder.set_authenticated(true);
        RequestCodec {
            decoder,
            protocol: Protocol::Resp2,
        }
    }

    /// Sets the protocol used to encode frames.
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
    }
}

impl Decoder for RequestCodec {
    type Item = Request;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Request>, Error> {
        self.decoder.decode(src)
    }
}

impl Encoder<Frame> for RequestCodec {
    type Error = Error;

    fn encode(&mut self, item: Frame, dst: &mut BytesMut) -> Result<(), Error> {
        item.encode(self.protocol, dst);
        Ok(())
    }
}

impl Encoder<Bytes> for RequestCodec {
    type Error = Error;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), Error> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

/// Client side of a connection: decodes raw replies, encodes [`Request`]s.
#[derive(Debug, Default)]
pub struct ReplyCodec {
    decoder: ReplyDecoder,
}

impl ReplyCodec {
    /// A codec with the given limits.
    pub fn new(limits: Limits) -> Self {
        ReplyCodec {
            decoder: ReplyDecoder::new(limits),
        }
    }
}

impl Decoder for ReplyCodec {
    type Item = Bytes;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, Error> {
        self.decoder.decode(src)
    }
}

impl Encoder<Request> for ReplyCodec {
    type Error = Error;

    fn encode(&mut self, item: Request, dst: &mut BytesMut) -> Result<(), Error> {
        dst.extend_from_slice(item.raw());
        Ok(())
    }
}
