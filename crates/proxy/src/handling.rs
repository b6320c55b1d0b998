//! Which commands need more than the stack: the one record of it.
//!
//! A command the session sends down the stack as it comes is a
//! [`Handling::Data`] command; the others are named here, by the job that
//! makes them special: the proxy answers them ([`answers`]), they change
//! the session ([`is_stateful`], [`is_subscription`]), they block
//! ([`router::command::Flags::BLOCKING`]), or a layer below carries them
//! out in several steps ([`is_multi_step`]). Adding a command that needs
//! special handling touches this file and the handler that carries it out.

use resp::Request;

/// The commands the proxy answers (or carries out) itself in a plain
/// session, by name ([`crate::commands::handle`]). [`CommandHandling`] is
/// built from this list; debug builds check on every request that a
/// command outside it is indeed left to the stack.
const PLAIN: &[&[u8]] = &[
    b"multi",
    b"exec",
    b"discard",
    b"watch",
    b"unwatch",
    b"subscribe",
    b"psubscribe",
    b"ssubscribe",
    b"unsubscribe",
    b"punsubscribe",
    b"sunsubscribe",
    b"monitor",
    b"quit",
    b"reset",
    b"select",
    b"readonly",
    b"readwrite",
    b"auth",
    b"hello",
    b"client",
    b"command",
    b"cluster",
    b"proxy",
    b"slowlog",
    b"latency",
    b"acl",
    b"info",
    b"sync",
    b"psync",
    b"replconf",
];

/// How a session that is authenticated, outside MULTI and not in
/// subscribe mode treats a command of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handling {
    /// Sent down the stack as it comes, without matching its name here.
    Data,
    /// Sent down the stack alone (a blocking command): after every earlier
    /// request of the client has answered, and before any later one
    /// starts, as Valkey runs nothing else of a client it has blocked.
    Blocking,
    /// [`crate::commands::handle`] may answer, hold or run it alone.
    Local,
}

/// The [`Handling`] of every command of the table, by
/// [`router::CommandSpec::id`].
#[derive(Debug)]
pub struct CommandHandling {
    rules: Vec<Rule>,
}

/// How one command of the table is handled.
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// Always the same way.
    Always(Handling),
    /// Blocking when the call asks to block, else data (XREAD and
    /// XREADGROUP, by their BLOCK option: [`router::CommandSpec::blocks`]).
    BlockingIfAsked,
}

impl CommandHandling {
    /// The set for `table` (commands and subcommands).
    pub fn new(table: &router::CommandTable) -> Self {
        let rules = table
            .all()
            .iter()
            .map(|spec| {
                let top = spec.name.split('|').next().unwrap_or_default();
                if is_local(top.as_bytes()) {
                    Rule::Always(Handling::Local)
                } else if spec.blocks_only_when_asked() {
                    Rule::BlockingIfAsked
                } else if spec.flags.contains(router::command::Flags::BLOCKING) {
                    Rule::Always(Handling::Blocking)
                } else {
                    Rule::Always(Handling::Data)
                }
            })
            .collect();
        CommandHandling { rules }
    }

    /// How `request`, a call of `spec`, is handled ([`Handling::Local`]
    /// when `spec` is unknown to the set).
    pub fn of(&self, spec: &router::CommandSpec, request: &Request) -> Handling {
        match self.rules.get(spec.id) {
            Some(Rule::Always(handling)) => *handling,
            Some(Rule::BlockingIfAsked) if spec.blocks(request.args()) => Handling::Blocking,
            Some(Rule::BlockingIfAsked) => Handling::Data,
            None => Handling::Local,
        }
    }
}

/// True for a command name (lowercase) [`crate::commands::handle`] deals
/// with in some state.
fn is_local(lower: &[u8]) -> bool {
    PLAIN.contains(&lower) || is_stateful(lower) || is_multi_step(lower)
}

/// Commands that would turn a shared backend connection into a replica
/// link, which the proxy does not offer.
pub const NEEDS_DEDICATED: &[&[u8]] = &[b"sync", b"psync", b"replconf"];

/// Commands a layer below may carry out in several steps after `call`
/// returned, on a cluster: the namespace layer scans for KEYS, DBSIZE,
/// FLUSHDB, RANDOMKEY and SWAPDB and reads the database for MOVE and COPY
/// ... DB; the fan-out layer copies keys between slots for multi-key
/// commands ([`aggregate::colocate`], [`aggregate::moves`]) and walks
/// SCAN on to the next node ([`aggregate::scan`]). Every other
/// command is enqueued on its backend connection inside `call`, which is
/// what keeps a client's requests in order; these are run alone instead,
/// so that their steps cannot interleave with the client's other requests.
pub fn is_multi_step(lower: &[u8]) -> bool {
    matches!(
        lower,
        b"keys"
            | b"scan"
            | b"dbsize"
            | b"flushdb"
            | b"randomkey"
            | b"swapdb"
            | b"move"
            | b"copy"
            | b"sunion"
            | b"sinter"
            | b"sdiff"
            | b"sunionstore"
            | b"sinterstore"
            | b"sdiffstore"
            | b"sintercard"
            | b"smove"
            | b"zunion"
            | b"zinter"
            | b"zdiff"
            | b"zunionstore"
            | b"zinterstore"
            | b"zdiffstore"
            | b"zintercard"
            | b"zrangestore"
            | b"pfcount"
            | b"pfmerge"
            | b"bitop"
            | b"lcs"
            | b"rename"
            | b"renamenx"
            | b"lmove"
            | b"rpoplpush"
            | b"msetnx"
            | b"sort"
            | b"sort_ro"
            | b"xread"
            | b"georadius"
            | b"georadiusbymember"
            | b"geosearchstore"
    )
}

/// Commands the session runs alone: nothing of the client's before them
/// is still in flight, and nothing after them starts before they answer.
pub fn is_stateful(lower: &[u8]) -> bool {
    matches!(
        lower,
        b"exec" | b"watch" | b"unwatch" | b"monitor" | b"wait" | b"waitaof"
    ) || is_subscription(lower)
}

/// True for the commands [`crate::commands::handle`] answers in a plain
/// session (besides WAIT and WAITAOF, which it runs after the client's
/// earlier replies).
pub fn answers(lower: &[u8]) -> bool {
    PLAIN.contains(&lower) || matches!(lower, b"wait" | b"waitaof")
}

/// The six subscription commands.
pub fn is_subscription(lower: &[u8]) -> bool {
    matches!(
        lower,
        b"subscribe" | b"psubscribe" | b"ssubscribe" | b"unsubscribe" | b"punsubscribe" | b"sunsubscribe"
    )
}
