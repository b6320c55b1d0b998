//! A tenant's pub/sub channels, in the commands that go down the stack:
//! PUBLISH and SPUBLISH publish under the tenant's prefix; PUBSUB
//! CHANNELS, SHARDCHANNELS, NUMSUB and SHARDNUMSUB see the tenant's
//! channels only, named as the tenant knows them. (Subscriptions are held
//! by the proxy's sessions, which name their channels the same way.)

use bytes::Bytes;
use resp::Frame;

use super::Scope;

/// Puts the channels named in `args` (a command `name`) under `channels`;
/// true when it changed anything.
pub fn request(name: &str, args: &mut [Bytes], channels: &Scope) -> bool {
    match name {
        "publish" | "spublish" if args.len() > 1 => {
            args[1] = channels.encode(&args[1]);
            true
        }
        "pubsub|channels" | "pubsub|shardchannels" if args.len() <= 3 => {
            let pattern = args.get(2).map_or(&b"*"[..], |pattern| &pattern[..]);
            let stored = channels.pattern(pattern);
            match args.get_mut(2) {
                Some(pattern) => *pattern = stored,
                // The caller adds what is missing.
                None => return false,
            }
            true
        }
        "pubsub|numsub" | "pubsub|shardnumsub" => {
            for channel in args.iter_mut().skip(2) {
                *channel = channels.encode(channel);
            }
            true
        }
        _ => false,
    }
}

/// The pattern PUBSUB CHANNELS / SHARDCHANNELS without one must be given,
/// so that they list the tenant's channels only.
pub fn missing_pattern(name: &str, args: &[Bytes], channels: &Scope) -> Option<Bytes> {
    (matches!(name, "pubsub|channels" | "pubsub|shardchannels") && args.len() == 2)
        .then(|| channels.pattern(b"*"))
}

/// True for the commands whose arguments name channels.
pub fn names_channels_in_request(name: &str) -> bool {
    matches!(name, "publish" | "spublish") || names_channels(name)
}

/// True for the commands whose replies name channels.
pub fn names_channels(name: &str) -> bool {
    matches!(
        name,
        "pubsub|channels" | "pubsub|shardchannels" | "pubsub|numsub" | "pubsub|shardnumsub"
    )
}

/// `frame`, the reply of `name`, with the channels named as the tenant
/// knows them.
pub fn reply(name: &str, frame: Frame, channels: &Scope) -> Frame {
    let decode = |frame: Frame| match frame {
        Frame::Bulk(stored) => channels.decode(&stored).map(Frame::Bulk),
        other => Some(other),
    };
    match (name, frame) {
        ("pubsub|channels" | "pubsub|shardchannels", Frame::Array(names)) => {
            Frame::Array(names.into_iter().filter_map(decode).collect())
        }
        (_, Frame::Array(pairs)) => Frame::Array(
            pairs
                .chunks(2)
                .flat_map(|pair| {
                    let name = decode(pair[0].clone()).unwrap_or_else(|| pair[0].clone());
                    std::iter::once(name).chain(pair.get(1).cloned())
                })
                .collect(),
        ),
        (_, Frame::Map(pairs)) => Frame::Map(
            pairs
                .into_iter()
                .map(|(name, count)| (decode(name.clone()).unwrap_or(name), count))
                .collect(),
        ),
        (_, other) => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[test]
    fn a_tenants_channels_carry_its_prefix_both_ways() {
        let shop = Scope::new(b("shop:"), 2, true).channels();
        let mut publish = vec![b("PUBLISH"), b("news"), b("hi")];
        assert!(request("publish", &mut publish, &shop));
        assert_eq!(publish[1], b("shop:news"));
        let mut channels = vec![b("PUBSUB"), b("CHANNELS"), b("n*")];
        assert!(request("pubsub|channels", &mut channels, &shop));
        assert_eq!(channels[2], b("shop:n*"));
        assert_eq!(
            missing_pattern("pubsub|channels", &channels[..2], &shop),
            Some(b("shop:*"))
        );
        let listed = Frame::Array(vec![Frame::Bulk(b("shop:news")), Frame::Bulk(b("blog:news"))]);
        assert_eq!(
            reply("pubsub|channels", listed, &shop),
            Frame::Array(vec![Frame::Bulk(b("news"))])
        );
        let counted = Frame::Array(vec![Frame::Bulk(b("shop:news")), Frame::Integer(2)]);
        assert_eq!(
            reply("pubsub|numsub", counted, &shop),
            Frame::Array(vec![Frame::Bulk(b("news")), Frame::Integer(2)])
        );
    }

    #[test]
    fn spublish_names_a_channel_in_no_database() {
        let table = router::CommandTable::builtin();
        let request = resp::Request::from_args(vec!["SPUBLISH", "orders", "x"]);
        let spec = table.lookup(&request).unwrap();
        let rewritten = |scope: &Scope| {
            Bytes::copy_from_slice(&super::super::rewrite::request(spec, &request, scope).args()[1])
        };
        // Database 3 emulated: the channel is the backend's, as SSUBSCRIBE's.
        assert_eq!(rewritten(&Scope::database(3)), b("orders"));
        assert_eq!(rewritten(&Scope::new(b("shop:"), 3, true)), b("shop:orders"));
    }
}
