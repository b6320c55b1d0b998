//! One ACL selector: which commands, keys and channels it allows, set by
//! Valkey's rules (`+@read`, `-config|set`, `~cart:*`, `%R~log:*`,
//! `&news`, ...) and checked as Valkey's `ACLSelectorCheckCmd` does.
//!
//! Command rules are kept in the order they were given, the way Valkey
//! keeps them for `ACL LIST` (a rule about a command replaces the earlier
//! rules about it), and the last rule that speaks about a command decides;
//! that is what Valkey's bitmap holds after applying the rules in order.

use resp::Args;
use router::command::keys::for_each_key_spec;
use router::command::{Categories, Flags};
use router::{CommandSpec, CommandTable};

use super::Denied;
use crate::namespace::glob;

/// Why a rule was not accepted, in the words of Valkey's
/// `ACLSetUserStringError`.
const UNKNOWN_NAME: &str = "Unknown command or category name in ACL";
const SYNTAX: &str = "Syntax error";
const KEYS_AFTER_ALL: &str = "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid \
     and does not have any effect. Try 'resetkeys' to start with an empty list of patterns";
const CHANNELS_AFTER_ALL: &str = "Adding a pattern after the * pattern (or the 'allchannels' flag) is not \
     valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels";
const FIRST_ARG_OF_SUBCOMMAND: &str = "Allowing first-arg of a subcommand is not supported";

/// What a command rule is about.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// Every command of a category (`@read`).
    Category(Categories, &'static str),
    /// A command and all its subcommands (`config`), or one subcommand
    /// (`config|get`), by its full lowercase name.
    Command(String),
    /// A command without subcommands, only with this first argument
    /// (`select|0`; deprecated in Valkey, still honoured).
    FirstArg { command: String, arg: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct CommandRule {
    allow: bool,
    target: Target,
}

impl CommandRule {
    /// Whether the rule allows `spec` run with `args`; `None` when it says
    /// nothing about it.
    fn decides(&self, spec: &CommandSpec, args: Args<'_>) -> Option<bool> {
        let speaks = match &self.target {
            Target::Category(category, _) => spec.categories.intersects(*category),
            Target::Command(name) => {
                spec.name == *name
                    || (spec.name.len() > name.len()
                        && spec.name.starts_with(name.as_str())
                        && spec.name.as_bytes()[name.len()] == b'|')
            }
            Target::FirstArg { command, arg } => {
                spec.name == *command
                    && args
                        .get(1)
                        .is_some_and(|first| first.eq_ignore_ascii_case(arg.as_bytes()))
            }
        };
        speaks.then_some(self.allow)
    }

    /// The rule as `ACL LIST` shows it.
    fn text(&self) -> String {
        let sign = if self.allow { '+' } else { '-' };
        match &self.target {
            Target::Category(_, name) => format!("{sign}@{name}"),
            Target::Command(name) => format!("{sign}{name}"),
            Target::FirstArg { command, arg } => format!("{sign}{command}|{arg}"),
        }
    }

    /// True when a later rule about `other` replaces this one, as Valkey's
    /// `ACLSelectorRemoveCommandRule` decides: the same text, or a rule
    /// about a command replacing those about its subcommands.
    fn replaced_by(&self, other: &CommandRule) -> bool {
        let (mine, theirs) = (self.text(), other.text());
        let (mine, theirs) = (&mine[1..], &theirs[1..]);
        mine == theirs
            || (mine.len() > theirs.len()
                && mine.starts_with(theirs)
                && mine.as_bytes()[theirs.len()] == b'|')
    }
}

/// A key pattern and what it allows: reading (`%R~`), writing (`%W~`), or
/// both (`~`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct KeyPattern {
    pattern: Vec<u8>,
    read: bool,
    write: bool,
}

/// One selector: the user's root permissions, or one `( ... )` of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    /// `+@all` started the command rules (else `-@all`).
    all_commands: bool,
    rules: Vec<CommandRule>,
    all_keys: bool,
    keys: Vec<KeyPattern>,
    all_channels: bool,
    channels: Vec<Vec<u8>>,
}

impl Selector {
    /// Applies one rule; the error is Valkey's reason.
    pub(super) fn apply(&mut self, op: &str, table: &CommandTable) -> Result<(), &'static str> {
        let lower = op.to_ascii_lowercase();
        match lower.as_str() {
            "allkeys" | "~*" => {
                self.all_keys = true;
                self.keys.clear();
            }
            "resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
            }
            "allchannels" | "&*" => {
                self.all_channels = true;
                self.channels.clear();
            }
            "resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            "allcommands" | "+@all" => {
                self.all_commands = true;
                self.rules.clear();
            }
            "nocommands" | "-@all" => {
                self.all_commands = false;
                self.rules.clear();
            }
            _ => return self.apply_pattern_or_command(op, table),
        }
        Ok(())
    }

    fn apply_pattern_or_command(&mut self, op: &str, table: &CommandTable) -> Result<(), &'static str> {
        let bytes = op.as_bytes();
        match bytes.first() {
            Some(b'~' | b'%') => self.add_key_pattern(op),
            Some(b'&') => {
                if self.all_channels {
                    return Err(CHANNELS_AFTER_ALL);
                }
                let channel = bytes[1..].to_vec();
                if !self.channels.contains(&channel) {
                    self.channels.push(channel);
                }
                Ok(())
            }
            Some(sign @ (b'+' | b'-')) => {
                let allow = *sign == b'+';
                let target = command_target(&op[1..], allow, table)?;
                let rule = CommandRule { allow, target };
                self.rules.retain(|earlier| !earlier.replaced_by(&rule));
                self.rules.push(rule);
                Ok(())
            }
            _ => Err(SYNTAX),
        }
    }

    fn add_key_pattern(&mut self, op: &str) -> Result<(), &'static str> {
        if self.all_keys {
            return Err(KEYS_AFTER_ALL);
        }
        let bytes = op.as_bytes();
        let (mut read, mut write, mut offset) = (false, false, 1);
        if bytes[0] == b'%' {
            loop {
                match bytes.get(offset).map(u8::to_ascii_uppercase) {
                    Some(b'R') if !read => read = true,
                    Some(b'W') if !write => write = true,
                    Some(b'~') if read || write => {
                        offset += 1;
                        break;
                    }
                    _ => return Err(SYNTAX),
                }
                offset += 1;
            }
        } else {
            (read, write) = (true, true);
        }
        let pattern = bytes[offset..].to_vec();
        match self.keys.iter_mut().find(|known| known.pattern == pattern) {
            Some(known) => {
                known.read |= read;
                known.write |= write;
            }
            None => self.keys.push(KeyPattern { pattern, read, write }),
        }
        Ok(())
    }

    /// True when it allows every command on every key and channel.
    pub(super) fn allows_everything(&self) -> bool {
        self.all_commands && self.all_keys && self.all_channels && self.rules.iter().all(|rule| rule.allow)
    }

    /// Checks `spec` run with `args`, as Valkey's `ACLSelectorCheckCmd`.
    pub(super) fn check(&self, spec: &CommandSpec, args: Args<'_>) -> Result<(), Denied> {
        if !spec.flags.contains(Flags::NO_AUTH) && !self.allows_command(spec, args) {
            return Err(Denied::Command);
        }
        if !self.all_keys {
            let mut denied = None;
            for_each_key_spec(spec, args, |position, key_spec| {
                if denied.is_none()
                    && !key_spec.not_key
                    && !self.allows_key(&args[position], key_spec.access, key_spec.changes)
                {
                    denied = Some(position);
                }
            });
            if let Some(position) = denied {
                return Err(Denied::Key(position));
            }
        }
        if !self.all_channels {
            if let Some(position) = self.denied_channel(spec, args) {
                return Err(Denied::Channel(position));
            }
        }
        Ok(())
    }

    fn allows_command(&self, spec: &CommandSpec, args: Args<'_>) -> bool {
        self.rules
            .iter()
            .rev()
            .find_map(|rule| rule.decides(spec, args))
            .unwrap_or(self.all_commands)
    }

    /// Valkey's `ACLSelectorCheckKey`.
    fn allows_key(&self, key: &[u8], read: bool, write: bool) -> bool {
        self.keys.iter().any(|known| {
            (known.read || !read) && (known.write || !write) && glob::matches(&known.pattern, key)
        })
    }

    /// The first channel argument it does not allow: the channels of
    /// PUBLISH / SPUBLISH and SUBSCRIBE / SSUBSCRIBE are matched against
    /// the patterns, PSUBSCRIBE's patterns compared literally (Valkey's
    /// `ACLCheckChannelAgainstList`).
    fn denied_channel(&self, spec: &CommandSpec, args: Args<'_>) -> Option<usize> {
        let (last, literal) = match spec.name.as_str() {
            "publish" | "spublish" => (2.min(args.len()), false),
            "subscribe" | "ssubscribe" => (args.len(), false),
            "psubscribe" => (args.len(), true),
            _ => return None,
        };
        (1..last).find(|&position| {
            let channel = &args[position][..];
            !self.channels.iter().any(|allowed| {
                if literal {
                    allowed == channel
                } else {
                    glob::matches(allowed, channel)
                }
            })
        })
    }

    /// The selector as `ACL LIST` shows it: keys, channels, then commands.
    pub(super) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.all_keys {
            parts.push("~*".to_string());
        } else {
            parts.extend(self.keys.iter().map(KeyPattern::text));
        }
        if self.all_channels {
            parts.push("&*".to_string());
        } else {
            parts.push("resetchannels".to_string());
            parts.extend(
                self.channels
                    .iter()
                    .map(|channel| format!("&{}", String::from_utf8_lossy(channel))),
            );
        }
        parts.push(self.command_rules());
        parts.join(" ")
    }

    /// Its command rules as `ACL GETUSER` shows them.
    pub(super) fn command_rules(&self) -> String {
        let start = if self.all_commands { "+@all" } else { "-@all" };
        std::iter::once(start.to_string())
            .chain(self.rules.iter().map(CommandRule::text))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Its key patterns as `ACL GETUSER` shows them.
    pub(super) fn key_rules(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        self.keys
            .iter()
            .map(KeyPattern::text)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Its channel patterns as `ACL GETUSER` shows them.
    pub(super) fn channel_rules(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        self.channels
            .iter()
            .map(|channel| format!("&{}", String::from_utf8_lossy(channel)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl KeyPattern {
    fn text(&self) -> String {
        let kind = match (self.read, self.write) {
            (true, true) => "~",
            (true, false) => "%R~",
            _ => "%W~",
        };
        format!("{kind}{}", String::from_utf8_lossy(&self.pattern))
    }
}

/// What `+name` / `-name` speaks about, checked against the command table.
fn command_target(name: &str, allow: bool, table: &CommandTable) -> Result<Target, &'static str> {
    let name = name.to_ascii_lowercase();
    if let Some(category) = name.strip_prefix('@') {
        let bits = Categories::named(category.as_bytes()).ok_or(UNKNOWN_NAME)?;
        let canonical = bits.names().next().ok_or(UNKNOWN_NAME)?;
        return Ok(Target::Category(bits, canonical));
    }
    let Some((command, arg)) = name.rsplit_once('|') else {
        table.get(name.as_bytes()).ok_or(UNKNOWN_NAME)?;
        return Ok(Target::Command(name));
    };
    if let Some((parent, sub)) = command.split_once('|') {
        // `+config|get|x`: a first argument of a subcommand.
        let parent = table.get(parent.as_bytes()).ok_or(UNKNOWN_NAME)?;
        parent.subcommand(sub.as_bytes()).ok_or(UNKNOWN_NAME)?;
        return Err(FIRST_ARG_OF_SUBCOMMAND);
    }
    let parent = table.get(command.as_bytes()).ok_or(UNKNOWN_NAME)?;
    if arg.is_empty() {
        return Err(SYNTAX);
    }
    if !parent.subcommands.is_empty() {
        parent.subcommand(arg.as_bytes()).ok_or(UNKNOWN_NAME)?;
        return Ok(Target::Command(name));
    }
    if !allow {
        // `-select|0`: Valkey looks up "select|0" as a command and finds none.
        return Err(UNKNOWN_NAME);
    }
    Ok(Target::FirstArg {
        command: command.to_string(),
        arg: arg.to_string(),
    })
}
