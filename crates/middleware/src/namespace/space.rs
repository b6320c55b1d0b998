//! [`Space`]: how the keys of one namespace are stored.
//!
//! A key `k` of a space with marker `m` (a string without `{` or `}`) is
//! stored as:
//!
//! - `m:k` when `k` has a hash tag: the tag is still the first `{...}` of
//!   the stored key, so it keeps its slot;
//! - `m{k}` when `k` has no hash tag and no `}`: the whole key becomes the
//!   tag, so the stored key hashes to `k`'s own slot;
//! - `m:k` otherwise (a key with a stray `}`): the one case where the slot
//!   changes, which only matters to multi-key commands on such keys.
//!
//! Keeping slots means a key and its namespaced twin live on the same node:
//! MOVE becomes a RENAMENX, and everything a client could do in one slot
//! it can still do.

use bytes::{BufMut, Bytes, BytesMut};

/// One key namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Space {
    marker: Bytes,
}

/// The first byte of every emulated database's marker.
const DATABASE_MARK: u8 = 0;

impl Space {
    /// The space of a namespace whose stored keys start with `marker`.
    ///
    /// # Panics
    /// `marker` contains `{` or `}` (it would capture the keys' hash tags).
    pub fn new(marker: impl Into<Bytes>) -> Space {
        let marker = marker.into();
        assert!(
            !marker.iter().any(|&b| b == b'{' || b == b'}'),
            "a namespace marker cannot contain braces"
        );
        Space { marker }
    }

    /// The space of emulated database `db`: marker `\0` followed by the
    /// number, short and unlike any key an application writes.
    pub fn database(db: u32) -> Space {
        let mut marker = BytesMut::with_capacity(12);
        marker.put_u8(DATABASE_MARK);
        marker.extend_from_slice(db.to_string().as_bytes());
        Space::new(marker.freeze())
    }

    /// The stored form of `key`.
    pub fn encode(&self, key: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(self.marker.len() + key.len() + 2);
        out.extend_from_slice(&self.marker);
        if has_hash_tag(key) || key.contains(&b'}') || key.is_empty() {
            out.put_u8(b':');
            out.extend_from_slice(key);
        } else {
            out.put_u8(b'{');
            out.extend_from_slice(key);
            out.put_u8(b'}');
        }
        out.freeze()
    }

    /// The client's key for a stored key of this space; `None` for a key of
    /// another space (or none).
    pub fn decode(&self, stored: &Bytes) -> Option<Bytes> {
        let rest = stored.strip_prefix(&self.marker[..])?;
        let start = self.marker.len() + 1;
        match rest.first()? {
            b':' => Some(stored.slice(start..)),
            b'{' if rest.len() >= 2 && rest.ends_with(b"}") => Some(stored.slice(start..stored.len() - 1)),
            _ => None,
        }
    }

    /// A glob (for KEYS and SCAN MATCH) that matches every stored key of
    /// this space, and possibly a few others that [`Space::decode`] rejects.
    pub fn glob(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.marker.len() * 2 + 6);
        for &b in self.marker.iter() {
            if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
                out.put_u8(b'\\');
            }
            out.put_u8(b);
        }
        out.extend_from_slice(b"[:{]*");
        out.freeze()
    }
}

/// True for a stored key that belongs to some emulated database (which
/// database 0, the real keyspace, does not show).
pub fn is_database_key(stored: &[u8]) -> bool {
    let Some(rest) = stored.strip_prefix(&[DATABASE_MARK]) else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && matches!(rest.get(digits), Some(b':' | b'{'))
}

/// True for a stored key that database 0, the real keyspace, does not
/// show: an emulated database's, or a temporary copy the proxy makes while
/// it carries out a command over several slots
/// ([`aggregate::colocate::TEMP_PREFIX`]).
pub fn is_hidden_from_root(stored: &[u8]) -> bool {
    is_database_key(stored) || stored.starts_with(aggregate::colocate::TEMP_PREFIX)
}

/// True when `key` has a non-empty hash tag (Valkey's rule: the first `{`
/// and the first `}` after it, with something between).
pub fn has_hash_tag(key: &[u8]) -> bool {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return false;
    };
    match key[open + 1..].iter().position(|&b| b == b'}') {
        Some(close) => close > 0,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use router::slot::key_slot;

    #[test]
    fn stored_keys_keep_their_slot_and_decode_back() {
        let space = Space::database(3);
        for key in [&b"foo"[..], b"{user1}:x", b"a{b", b"\x00\xff", b"k:3"] {
            let stored = space.encode(key);
            assert_eq!(key_slot(&stored), key_slot(key), "{key:?} -> {stored:?}");
            assert_eq!(space.decode(&stored).as_deref(), Some(key));
            assert!(is_database_key(&stored));
        }
        // The stray-brace cases decode back, though their slot changes.
        for key in [&b"a}b"[..], b"x{}y"] {
            assert_eq!(space.decode(&space.encode(key)).as_deref(), Some(key));
        }
        assert_eq!(space.decode(&space.encode(b"")).as_deref(), Some(&b""[..]));
    }

    #[test]
    fn spaces_do_not_see_each_other() {
        let three = Space::database(3);
        let thirty = Space::database(30);
        assert_eq!(three.decode(&thirty.encode(b"k")), None);
        assert_eq!(thirty.decode(&three.encode(b"k")), None);
        assert!(!is_database_key(b"plain"));
        assert!(!is_database_key(b"\x00x"));
        assert_eq!(&three.glob()[..], b"\x003[:{]*");
    }
}
