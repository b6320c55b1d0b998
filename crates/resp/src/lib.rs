//! RESP2 and RESP3 for valkey-proxy: frames, a resumable zero-copy decoder for
//! client requests and for server replies, an encoder, RESP3 to RESP2
//! conversion, and tokio-util codecs.
//!
//! Nothing here touches a socket or a runtime: the decoders work on a
//! [`bytes::BytesMut`] that the caller fills, and keep their position between
//! calls so that a large request arriving in many small reads is scanned once.
//!
//! # Layout
//! - [`limits`]: the bounds a decoder enforces, with Valkey's defaults.
//! - [`error`]: the crate's error type; protocol errors carry Valkey's exact reply text.
//! - [`request`]: the [`Request`], a client command as its raw bytes plus argument offsets.
//! - [`request_decoder`]: the [`RequestDecoder`], multibulk and inline client requests.
//! - [`inline`]: the inline-command argument splitter (Valkey's `sdssplitargs`).
//! - [`reply_decoder`]: the [`ReplyDecoder`], finds complete server replies of any RESP type.
//! - [`frame`]: the [`Frame`], a parsed reply tree, and [`Frame::parse`].
//! - [`encode`]: writing frames and commands, in RESP2 or RESP3.
//! - [`codec`]: tokio-util `Decoder`/`Encoder` implementations.
//! - [`number`]: strict integer parsing as Valkey does it.

pub mod codec;
pub mod encode;
pub mod error;
pub mod frame;
pub mod inline;
pub mod limits;
pub mod number;
pub mod reply_decoder;
pub mod request;
pub mod request_decoder;

pub use codec::{ReplyCodec, RequestCodec};
pub use encode::{encode_command, Protocol};
pub use error::Error;
pub use frame::Frame;
pub use limits::Limits;
pub use reply_decoder::ReplyDecoder;
pub use request::{Args, ArgsIter, Request};
pub use request_decoder::RequestDecoder;
