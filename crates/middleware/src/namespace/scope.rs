//! [`Scope`]: where one client's keys are stored: under its tenant's
//! prefix, if it has a tenant, and in its database's [`Space`] where
//! databases are emulated.
//!
//! A tenant's prefix is put in front of the key as it is (`shop:` and
//! `cart:1` make `shop:cart:1`): the prefix has no braces, so a key's hash
//! tag stays its first tag and keeps its slot; a key without a tag changes
//! slot, which only a command over several keys notices, and the proxy
//! runs those across slots anyway. An emulated database's space goes
//! inside the tenant's prefix (`shop:` + `\0`3`{cart:1}`).

use bytes::{BufMut, Bytes, BytesMut};

use super::space::{is_hidden_from_root, Space};

/// Where the keys of one client's database are stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// The tenant's key prefix; empty without a tenant, or for a tenant
    /// kept apart by databases of its own.
    tenant: Bytes,
    /// The tenant's channel prefix (its key prefix unless said otherwise).
    channels: Bytes,
    /// The emulated database's space; `None` for database 0 (the real
    /// keyspace, or the tenant's) and on backends with real databases.
    space: Option<Space>,
    /// Every database of the tenant at once (its FLUSHALL): keys of its
    /// emulated databases are not hidden.
    every_database: bool,
}

impl Scope {
    /// Database `db` of the tenant with prefix `tenant` (empty: none),
    /// `emulated` when the backend has no databases of its own.
    pub fn new(tenant: Bytes, db: u32, emulated: bool) -> Scope {
        Scope {
            channels: tenant.clone(),
            tenant,
            space: (emulated && db != 0).then(|| Space::database(db)),
            every_database: false,
        }
    }

    /// Database `db` of the tenant with key prefix `keys` and channel
    /// prefix `channels` (either empty: none).
    pub fn with_prefixes(keys: Bytes, channels: Bytes, db: u32, emulated: bool) -> Scope {
        Scope {
            tenant: keys,
            channels,
            space: (emulated && db != 0).then(|| Space::database(db)),
            every_database: false,
        }
    }

    /// The same scope, with the tenant's channels under `prefix` (a
    /// tenant with databases of its own has keys without a prefix, and
    /// channels, which no database holds, with one).
    pub fn with_channel_prefix(mut self, prefix: Bytes) -> Scope {
        self.channels = prefix;
        self
    }

    /// Every key of the same tenant, in all its databases; `None` without
    /// a tenant.
    pub fn whole_tenant(&self) -> Option<Scope> {
        (!self.tenant.is_empty()).then(|| Scope {
            tenant: self.tenant.clone(),
            channels: self.channels.clone(),
            space: None,
            every_database: true,
        })
    }

    /// Where the same tenant's pub/sub channels are: under its prefix,
    /// whatever the database (channels are not per database); the root
    /// without a tenant.
    pub fn channels(&self) -> Scope {
        Scope {
            tenant: self.channels.clone(),
            channels: self.channels.clone(),
            space: None,
            every_database: !self.channels.is_empty(),
        }
    }

    /// True when channels keep their names (no tenant, or one with a
    /// backend of its own): [`Scope::channels`] would be the root.
    pub fn channels_are_root(&self) -> bool {
        self.channels.is_empty()
    }

    /// Emulated database `db` (no tenant).
    pub fn database(db: u32) -> Scope {
        Scope::new(Bytes::new(), db, true)
    }

    /// Emulated database `db` of the same tenant.
    pub fn in_database(&self, db: u32) -> Scope {
        Scope::new(self.tenant.clone(), db, true).with_channel_prefix(self.channels.clone())
    }

    /// True when keys are stored as they are: no tenant, database 0 (or a
    /// real database).
    pub fn is_root(&self) -> bool {
        self.tenant.is_empty() && self.space.is_none()
    }

    /// True inside an emulated database other than 0.
    pub fn is_emulated_database(&self) -> bool {
        self.space.is_some()
    }

    /// The stored form of `key`.
    pub fn encode(&self, key: &[u8]) -> Bytes {
        match &self.space {
            None if self.tenant.is_empty() => Bytes::copy_from_slice(key),
            None => self.prefixed(key),
            Some(space) if self.tenant.is_empty() => space.encode(key),
            Some(space) => self.prefixed(&space.encode(key)),
        }
    }

    /// The prefix alone makes a stored key (a tenant's keys outside an
    /// emulated database): the prefix, to be put in front of the key.
    pub fn plain_prefix(&self) -> Option<&[u8]> {
        (self.space.is_none() && !self.tenant.is_empty()).then_some(&self.tenant[..])
    }

    fn prefixed(&self, key: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(self.tenant.len() + key.len());
        out.extend_from_slice(&self.tenant);
        out.extend_from_slice(key);
        out.freeze()
    }

    /// The client's key for a stored key of this scope; `None` for a key
    /// of another tenant or database, and (in database 0) for the keys of
    /// emulated databases and the proxy's temporary copies.
    pub fn decode(&self, stored: &Bytes) -> Option<Bytes> {
        if !stored.starts_with(&self.tenant) {
            return None;
        }
        let rest = stored.slice(self.tenant.len()..);
        match &self.space {
            Some(space) => space.decode(&rest),
            None if !self.every_database && is_hidden_from_root(&rest) => None,
            None => Some(rest),
        }
    }

    /// The stored form of a glob `pattern` over names of a scope without
    /// a database space (a tenant's channels): the prefix, escaped, then
    /// the pattern.
    pub fn pattern(&self, pattern: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(self.tenant.len() * 2 + pattern.len());
        escape_into(&self.tenant, &mut out);
        out.extend_from_slice(pattern);
        out.freeze()
    }

    /// A glob (for KEYS and SCAN MATCH) that matches every stored key of
    /// this scope, and possibly a few others that [`Scope::decode`]
    /// rejects; `None` for the root, where every key may be one.
    pub fn glob(&self) -> Option<Bytes> {
        if self.is_root() {
            return None;
        }
        let mut out = BytesMut::with_capacity(self.tenant.len() * 2 + 8);
        escape_into(&self.tenant, &mut out);
        match &self.space {
            Some(space) => out.extend_from_slice(&space.glob()),
            None => out.put_u8(b'*'),
        }
        Some(out.freeze())
    }
}

/// `text` with glob characters escaped, so that a glob matches it as it is.
fn escape_into(text: &[u8], out: &mut BytesMut) {
    for &b in text {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.put_u8(b'\\');
        }
        out.put_u8(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::glob::matches;
    use router::slot::key_slot;

    #[test]
    fn a_tenants_keys_carry_its_prefix_and_tagged_keys_keep_their_slot() {
        let shop = Scope::new(Bytes::from_static(b"shop:"), 0, true);
        assert_eq!(&shop.encode(b"cart:1")[..], b"shop:cart:1");
        let tagged = shop.encode(b"{user1}:cart");
        assert_eq!(key_slot(&tagged), key_slot(b"{user1}:cart"));
        for key in [&b"cart:1"[..], b"{u}x", b"", b"a}b"] {
            assert_eq!(shop.decode(&shop.encode(key)).as_deref(), Some(key));
        }
        let glob = shop.glob().unwrap();
        assert!(matches(&glob, b"shop:cart:1"));
        assert!(!matches(&glob, b"blog:cart:1"));
    }

    #[test]
    fn tenants_and_databases_do_not_see_each_other() {
        let prefix = Bytes::from_static(b"shop:");
        let shop = Scope::new(prefix.clone(), 0, true);
        let shop3 = Scope::new(prefix, 3, true);
        let blog = Scope::new(Bytes::from_static(b"blog:"), 0, true);
        let root = Scope::default();
        let stored = shop3.encode(b"k");
        assert_eq!(
            key_slot(&stored),
            key_slot(b"k"),
            "a database keeps slots inside a tenant"
        );
        assert_eq!(shop3.decode(&stored).as_deref(), Some(&b"k"[..]));
        // Database 0 of the tenant hides its databases, as the root does.
        assert_eq!(shop.decode(&stored), None);
        assert_eq!(blog.decode(&shop.encode(b"k")), None);
        assert_eq!(shop.decode(&blog.encode(b"k")), None);
        // The root sees a tenant's keys as they are stored (an operator).
        assert_eq!(root.decode(&shop.encode(b"k")).as_deref(), Some(&b"shop:k"[..]));
        assert!(matches(&shop3.glob().unwrap(), &stored));
        assert_eq!(root.glob(), None);
    }

    #[test]
    fn a_whole_tenant_holds_its_databases() {
        let shop3 = Scope::new(Bytes::from_static(b"shop:"), 3, true);
        let whole = shop3.whole_tenant().unwrap();
        assert!(whole.decode(&shop3.encode(b"k")).is_some());
        assert_eq!(whole.decode(&Bytes::from_static(b"blog:k")), None);
        assert_eq!(Scope::database(3).whole_tenant(), None);
    }

    #[test]
    fn glob_characters_in_a_prefix_are_escaped() {
        let odd = Scope::new(Bytes::from_static(b"a*b:"), 0, false);
        let glob = odd.glob().unwrap();
        assert!(matches(&glob, b"a*b:k"));
        assert!(!matches(&glob, b"axb:k"));
        let pattern = odd.channels().pattern(b"news.*");
        assert!(matches(&pattern, b"a*b:news.x"));
        assert!(!matches(&pattern, b"axb:news.x"));
    }

    #[test]
    fn channels_are_the_tenants_in_every_database() {
        let shop3 = Scope::new(Bytes::from_static(b"shop:"), 3, true);
        let channels = shop3.channels();
        assert_eq!(&channels.encode(b"news")[..], b"shop:news");
        assert_eq!(
            channels.decode(&Bytes::from_static(b"shop:news")).as_deref(),
            Some(&b"news"[..])
        );
        assert_eq!(channels.decode(&Bytes::from_static(b"blog:news")), None);
        // Without a tenant, channels are the backend's, even in database 3.
        assert!(Scope::database(3).channels().is_root());
    }
}
