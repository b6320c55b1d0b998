//! [`User`]: a user's flags, passwords and selectors, set with Valkey's
//! rule syntax and checked before every command.

use resp::{Args, Frame};
use router::{CommandSpec, CommandTable};
use sha2::{Digest, Sha256};

use super::selector::Selector;
use super::Denied;

const BAD_HASH: &str =
    "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters";
const NO_SUCH_PASSWORD: &str = "The password you are trying to remove from the user does not exist";

/// One user: whether it may log in, with which passwords, and what its
/// selectors allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    name: String,
    enabled: bool,
    nopass: bool,
    /// SHA-256 digests of its passwords.
    passwords: Vec<[u8; 32]>,
    root: Selector,
    selectors: Vec<Selector>,
}

impl User {
    /// A user as Valkey creates one: `off`, no password, no command, no
    /// key, no channel.
    pub fn new(name: &str) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            root: Selector::default(),
            selectors: Vec::new(),
        }
    }

    /// Applies `rules` (space-separated, as after `ACL SETUSER name`), all
    /// or none.
    ///
    /// # Errors
    /// Valkey's text for the first rule it would refuse, as
    /// `Error in ACL SETUSER modifier '+foo': Unknown command or category
    /// name in ACL`.
    pub fn apply(&mut self, rules: &str, table: &CommandTable) -> Result<(), String> {
        let mut staged = self.clone();
        for op in merge_selectors(rules)? {
            staged
                .apply_one(&op, table)
                .map_err(|why| format!("Error in ACL SETUSER modifier '{op}': {why}"))?;
        }
        *self = staged;
        Ok(())
    }

    fn apply_one(&mut self, op: &str, table: &CommandTable) -> Result<(), &'static str> {
        match op.to_ascii_lowercase().as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            // RESTORE payloads are checked by the backend, with the proxy's
            // own backend user; Valkey 9 does not list these flags either.
            "skip-sanitize-payload" | "sanitize-payload" => {}
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "clearselectors" => self.selectors.clear(),
            "reset" => {
                *self = User::new(&self.name);
            }
            _ => return self.apply_value(op, table),
        }
        Ok(())
    }

    fn apply_value(&mut self, op: &str, table: &CommandTable) -> Result<(), &'static str> {
        let rest = op.get(1..).unwrap_or_default();
        match op.as_bytes()[0] {
            b'>' => self.add_password(rest.as_bytes()),
            b'#' => self.add_password_hash(rest)?,
            b'<' => self.remove_password(Sha256::digest(rest.as_bytes()).into())?,
            b'!' => self.remove_password(decode_hash(rest).ok_or(BAD_HASH)?)?,
            b'(' if op.ends_with(')') => {
                let mut selector = Selector::default();
                for part in op[1..op.len() - 1].split_whitespace() {
                    selector.apply(part, table)?;
                }
                self.selectors.push(selector);
            }
            _ => self.root.apply(op, table)?,
        }
        Ok(())
    }

    /// Adds a password given in clear (`>password`).
    pub fn add_password(&mut self, clear: &[u8]) {
        self.add_digest(Sha256::digest(clear).into());
    }

    /// Adds a password given as its SHA-256 digest in lowercase hex
    /// (`#digest`).
    ///
    /// # Errors
    /// Valkey's text for a digest that is not 64 lowercase hex digits.
    pub fn add_password_hash(&mut self, hex: &str) -> Result<(), &'static str> {
        self.add_digest(decode_hash(hex).ok_or(BAD_HASH)?);
        Ok(())
    }

    fn add_digest(&mut self, digest: [u8; 32]) {
        if !self.passwords.contains(&digest) {
            self.passwords.push(digest);
        }
        self.nopass = false;
    }

    fn remove_password(&mut self, digest: [u8; 32]) -> Result<(), &'static str> {
        let before = self.passwords.len();
        self.passwords.retain(|known| *known != digest);
        if self.passwords.len() == before {
            return Err(NO_SUCH_PASSWORD);
        }
        Ok(())
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when `password` logs it in: it is `on`, and `nopass` or the
    /// password is one of its own.
    pub fn accepts(&self, password: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(password).into();
        self.enabled && (self.nopass || self.passwords.contains(&digest))
    }

    /// The SHA-256 digests of its passwords.
    pub fn passwords(&self) -> &[[u8; 32]] {
        &self.passwords
    }

    /// True when some password (or `nopass`) could log it in.
    pub fn has_credentials(&self) -> bool {
        self.nopass || !self.passwords.is_empty()
    }

    /// True when no command, key or channel is refused to it, so that the
    /// checks can be skipped.
    pub fn is_unrestricted(&self) -> bool {
        self.root.allows_everything()
    }

    /// Checks a command about to run, as Valkey's
    /// `ACLCheckAllUserCommandPerm`: allowed when one selector allows it;
    /// otherwise the most telling refusal (a key or channel over the
    /// command; the last argument among equals).
    ///
    /// # Errors
    /// What refused it.
    pub fn check(&self, spec: &CommandSpec, args: Args<'_>) -> Result<(), Denied> {
        let mut worst = Denied::Command;
        for selector in std::iter::once(&self.root).chain(&self.selectors) {
            match selector.check(spec, args) {
                Ok(()) => return Ok(()),
                Err(denied) if denied.rank() > worst.rank() => worst = denied,
                Err(_) => {}
            }
        }
        Err(worst)
    }

    /// The user as `ACL LIST` shows it, after `user <name> `.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.flags().into_iter().map(str::to_string).collect();
        parts.extend(self.passwords.iter().map(|digest| format!("#{}", hex(digest))));
        parts.push(self.root.describe());
        parts.extend(
            self.selectors
                .iter()
                .map(|selector| format!("({})", selector.describe())),
        );
        parts.join(" ")
    }

    /// Its flags as Valkey 9 lists them.
    fn flags(&self) -> Vec<&'static str> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            flags.push("nopass");
        }
        flags
    }

    /// `ACL GETUSER`'s reply: flags, passwords (digests), the root
    /// selector's commands, keys and channels, then the other selectors.
    pub fn details(&self) -> Frame {
        let text = |s: &str| Frame::Bulk(s.to_string().into());
        let selector_fields = |selector: &Selector| {
            vec![
                (text("commands"), text(&selector.command_rules())),
                (text("keys"), text(&selector.key_rules())),
                (text("channels"), text(&selector.channel_rules())),
            ]
        };
        let mut fields = vec![
            (
                text("flags"),
                Frame::Set(self.flags().into_iter().map(text).collect()),
            ),
            (
                text("passwords"),
                Frame::Array(self.passwords.iter().map(|digest| text(&hex(digest))).collect()),
            ),
        ];
        fields.extend(selector_fields(&self.root));
        fields.push((
            text("selectors"),
            Frame::Array(
                self.selectors
                    .iter()
                    .map(|s| Frame::Map(selector_fields(s)))
                    .collect(),
            ),
        ));
        Frame::Map(fields)
    }
}

/// Splits rules on spaces, keeping a `( ... )` selector whole even when
/// it holds spaces (Valkey's `ACLMergeSelectorArguments`).
fn merge_selectors(rules: &str) -> Result<Vec<String>, String> {
    let mut ops = Vec::new();
    let mut open: Option<String> = None;
    for op in rules.split_whitespace() {
        match open.as_mut() {
            Some(selector) => {
                selector.push(' ');
                selector.push_str(op);
                if op.ends_with(')') {
                    ops.extend(open.take());
                }
            }
            None if op.starts_with('(') && !op.ends_with(')') => open = Some(op.to_string()),
            None => ops.push(op.to_string()),
        }
    }
    match open {
        Some(selector) => {
            let start = selector.split(' ').next().unwrap_or_default();
            Err(format!(
                "Unmatched parenthesis in acl selector starting at '{start}'."
            ))
        }
        None => Ok(ops),
    }
}

/// 64 lowercase hex digits as 32 bytes (Valkey's `ACLCheckPasswordHash`).
fn decode_hash(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
