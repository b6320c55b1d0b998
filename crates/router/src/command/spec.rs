//! What `COMMAND INFO` says about one command.

use std::sync::Arc;

use resp::Frame;

/// Command flags the proxy acts on (a subset of Valkey's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(u32);

impl Flags {
    /// `write`
    pub const WRITE: Flags = Flags(1);
    /// `readonly`
    pub const READONLY: Flags = Flags(1 << 1);
    /// `blocking`
    pub const BLOCKING: Flags = Flags(1 << 2);
    /// `pubsub`
    pub const PUBSUB: Flags = Flags(1 << 3);
    /// `admin`
    pub const ADMIN: Flags = Flags(1 << 4);
    /// `noscript`
    pub const NOSCRIPT: Flags = Flags(1 << 5);
    /// `movablekeys`
    pub const MOVABLE_KEYS: Flags = Flags(1 << 6);
    /// `fast`
    pub const FAST: Flags = Flags(1 << 7);
    /// `no_multi`
    pub const NO_MULTI: Flags = Flags(1 << 8);
    /// `no_auth`: runs before authentication, and no ACL refuses it.
    pub const NO_AUTH: Flags = Flags(1 << 9);
    /// Not a Valkey flag: the proxy sends the command on a connection of
    /// its own, never queued behind other clients' requests on a shared
    /// one. Set by the proxy's overrides on SCRIPT KILL and FUNCTION KILL,
    /// which must reach a node whose shared connection may be the very one
    /// running the script they stop.
    pub const OWN_CONNECTION: Flags = Flags(1 << 16);

    /// The flag for a name as `COMMAND INFO` spells it.
    pub fn from_name(name: &[u8]) -> Flags {
        match name {
            b"write" => Flags::WRITE,
            b"readonly" => Flags::READONLY,
            b"blocking" => Flags::BLOCKING,
            b"pubsub" => Flags::PUBSUB,
            b"admin" => Flags::ADMIN,
            b"noscript" => Flags::NOSCRIPT,
            b"movablekeys" => Flags::MOVABLE_KEYS,
            b"fast" => Flags::FAST,
            b"no_multi" => Flags::NO_MULTI,
            b"no_auth" => Flags::NO_AUTH,
            _ => Flags(0),
        }
    }

    /// True when every flag of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when any flag of `other` is set.
    pub fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    /// Both sets of flags.
    pub fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
}

/// Where a key spec starts looking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BeginSearch {
    /// At a fixed argument index.
    Index(i64),
    /// After `keyword`, searched from `start_from` (negative: from the end).
    Keyword {
        /// The keyword, as the server spells it.
        keyword: Vec<u8>,
        /// Where the search starts.
        start_from: i64,
    },
    /// A spec the proxy cannot follow (`unknown`).
    Unknown,
}

/// How a key spec finds its keys once it has started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FindKeys {
    /// Keys from the start up to `last_key` (negative: from the end), every
    /// `key_step` arguments; `limit` divides the remaining arguments.
    Range {
        /// Last key, relative to the start or (negative) to the end.
        last_key: i64,
        /// Distance between keys.
        key_step: i64,
        /// When `last_key` is -1: use only 1/limit of the remaining arguments.
        limit: i64,
    },
    /// An argument gives the number of keys.
    KeyNum {
        /// Index of the count, relative to the start.
        key_num_idx: i64,
        /// Index of the first key, relative to the start.
        first_key: i64,
        /// Distance between keys.
        key_step: i64,
    },
    /// A spec the proxy cannot follow.
    Unknown,
}

/// One key spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    /// Where the search begins.
    pub begin: BeginSearch,
    /// How keys are found from there.
    pub find: FindKeys,
    /// The key is a channel or otherwise not a key (`not_key`), as in
    /// SPUBLISH. It still decides the slot.
    pub not_key: bool,
    /// The command may change the key (`RW`, `OW` or `RM`), rather than
    /// only read it (`RO`).
    pub writes: bool,
    /// The command returns, copies or uses the key's value (`access`): an
    /// ACL needs read permission on it.
    pub access: bool,
    /// The command adds, removes or changes the key's value (`insert`,
    /// `delete` or `update`): an ACL needs write permission on it.
    pub changes: bool,
}

impl KeySpec {
    /// How the keys of commands known only by their legacy key positions
    /// (old modules) are used: in every way.
    pub const LEGACY: KeySpec = KeySpec {
        begin: BeginSearch::Unknown,
        find: FindKeys::Unknown,
        not_key: false,
        writes: true,
        access: true,
        changes: true,
    };
}

/// The `request_policy` tip: where a keyless or multi-key command goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RequestPolicy {
    /// No tip: by keys, or any node when there are none.
    #[default]
    Default,
    /// Every node, replicas included.
    AllNodes,
    /// Every primary.
    AllShards,
    /// Split by slot and sent to each owner.
    MultiShard,
    /// The command needs its own handling.
    Special,
    /// The proxy's home shard (the first), where it keeps its clients'
    /// SUBSCRIBE / PSUBSCRIBE links: PUBLISH goes there so that its count
    /// includes them. Not a Valkey tip; set by the proxy's overrides.
    Home,
}

/// The `response_policy` tip: how replies from several nodes are combined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResponsePolicy {
    /// No tip: arrays are concatenated (keyless), or replies kept in order.
    #[default]
    Default,
    /// The first non-error reply.
    OneSucceeded,
    /// An error if any node failed, else one reply.
    AllSucceeded,
    /// Integers combined with AND.
    AggLogicalAnd,
    /// Integers combined with OR.
    AggLogicalOr,
    /// The smallest integer.
    AggMin,
    /// The largest integer.
    AggMax,
    /// The sum of the integers.
    AggSum,
    /// The command needs its own merge.
    Special,
    /// Arrays merged without duplicates, first appearance first (PUBSUB
    /// CHANNELS). Not a Valkey tip; set by the proxy's overrides.
    Union,
    /// `name, count` pairs summed by name, in the first reply's order
    /// (PUBSUB NUMSUB). Not a Valkey tip; set by the proxy's overrides.
    SumPairs,
}

/// What the proxy knows about one command (or subcommand).
#[derive(Clone, Debug)]
pub struct CommandSpec {
    /// Lowercase name; `parent|sub` for a subcommand.
    pub name: String,
    /// Index of this spec in [`crate::CommandTable::all`], set when the
    /// spec joins a table; lets per-command state live in a plain vector.
    pub id: usize,
    /// Valkey's arity: N exactly, or -N at least N (the name included).
    pub arity: i64,
    /// Flags the proxy acts on.
    pub flags: Flags,
    /// ACL categories.
    pub categories: super::Categories,
    /// Legacy first key, last key and step.
    pub legacy_keys: (i64, i64, i64),
    /// Key specs, in the server's order.
    pub key_specs: Vec<KeySpec>,
    /// Where the command goes when it has no keys or several slots.
    pub request_policy: RequestPolicy,
    /// How replies from several nodes combine.
    pub response_policy: ResponsePolicy,
    /// Subcommands by lowercase subcommand name (`get` for `config|get`).
    pub subcommands: Vec<Arc<CommandSpec>>,
    /// The `COMMAND INFO` entry as the server sent it, for answering
    /// `COMMAND INFO` from the proxy.
    pub info: Frame,
}

impl CommandSpec {
    /// True when the argument count is allowed by the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// The subcommand named `sub` (any case), if this is a container.
    pub fn subcommand(&self, sub: &[u8]) -> Option<&Arc<CommandSpec>> {
        self.subcommands.iter().find(|spec| {
            spec.name
                .rsplit_once('|')
                .is_some_and(|(_, name)| name.as_bytes().eq_ignore_ascii_case(sub))
        })
    }

    /// True for commands that do not modify data and may go to a replica.
    pub fn is_read_only(&self) -> bool {
        self.flags.contains(Flags::READONLY) && !self.flags.contains(Flags::WRITE)
    }

    /// True when this call (`args`, the name first) may block its
    /// connection: a command with the `blocking` flag, but XREAD and
    /// XREADGROUP only with their BLOCK option, since without it they
    /// answer at once like any read.
    #[inline]
    pub fn blocks(&self, args: resp::Args<'_>) -> bool {
        self.flags.contains(Flags::BLOCKING) && (!self.blocks_only_when_asked() || asks_to_block(args))
    }

    /// True when this call must travel on a connection of its own: it may
    /// block its connection ([`CommandSpec::blocks`]), or must not wait
    /// behind others ([`Flags::OWN_CONNECTION`]).
    #[inline]
    pub fn needs_own_connection(&self, args: resp::Args<'_>) -> bool {
        // One test for the common case, neither flag.
        self.flags
            .intersects(Flags::BLOCKING.union(Flags::OWN_CONNECTION))
            && (self.flags.contains(Flags::OWN_CONNECTION) || self.blocks(args))
    }

    /// True for the blocking commands that block only when their BLOCK
    /// option says so (XREAD and XREADGROUP): [`CommandSpec::blocks`]
    /// must read their arguments.
    pub fn blocks_only_when_asked(&self) -> bool {
        matches!(self.name.as_str(), "xread" | "xreadgroup")
    }
}

/// True when an XREAD or XREADGROUP call has BLOCK among its options,
/// which all come before STREAMS. The options are walked with their
/// values, so a group named "block" is not taken for the option; an
/// option this does not know counts as blocking, the safe side.
fn asks_to_block(args: resp::Args<'_>) -> bool {
    let mut i = 1;
    while let Some(option) = args.get(i) {
        let is = |name: &[u8]| option.eq_ignore_ascii_case(name);
        let values = if is(b"streams") {
            return false;
        } else if is(b"noack") {
            0
        } else if is(b"count") {
            1
        } else if is(b"group") {
            2
        } else {
            // BLOCK itself, or an option this does not know.
            return true;
        };
        i += 1 + values;
    }
    true
}
