//! The users clients log in as: `[[users]]` entries ([`UserConfig`]) with
//! passwords, a tenant and Valkey ACL rules, built once into [`Users`].
//!
//! A user's `acl` is written as after Valkey's `ACL SETUSER name`, from a
//! new user (`off`, no command, no key, no channel); without it the user
//! is `on +@all ~* &*`. Its `password` and `passwords_sha256` are added
//! to whatever the rules say. The rules are checked against the command
//! table when the configuration is loaded (`ProxyConfig::validate`).

use std::sync::Arc;

use middleware::acl::User;
use router::CommandTable;
use serde::Deserialize;

use crate::config::ConfigError;
use crate::tenants::Tenants;

/// The rules of a user whose entry has no `acl`.
pub const DEFAULT_RULES: &str = "on +@all ~* &*";

/// One `[[users]]` entry.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// User name (`default` is the user of a plain `AUTH <password>`).
    pub name: String,
    /// Password, in clear.
    #[serde(default)]
    pub password: Option<String>,
    /// Passwords as SHA-256 digests in hex (Valkey's `#<hash>`), so that
    /// the file holds no secret; several, to rotate them.
    #[serde(default)]
    pub passwords_sha256: Vec<String>,
    /// The tenant whose keys the user works on ([`crate::tenants`]); none
    /// (or `*`) for an operator, who sees every key as stored.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Valkey ACL rules (`on +@all -@dangerous ~cart:* &*`); key and
    /// channel patterns are inside the user's tenant.
    #[serde(default)]
    pub acl: Option<String>,
    /// `AUTH <password>` without a user name logs in as this user when the
    /// password is one of its own (for clients that cannot send a user
    /// name). Such passwords must be unique among these users.
    #[serde(default)]
    pub password_only: bool,
}

impl UserConfig {
    /// The user its entry describes.
    ///
    /// # Errors
    /// Valkey's text for a rule it would refuse, or a digest that is not
    /// 64 hex digits.
    pub fn user(&self, table: &CommandTable) -> Result<User, String> {
        let mut user = User::new(&self.name);
        user.apply(self.acl.as_deref().unwrap_or(DEFAULT_RULES), table)?;
        if let Some(password) = &self.password {
            user.add_password(password.as_bytes());
        }
        for digest in &self.passwords_sha256 {
            user.add_password_hash(&digest.to_ascii_lowercase())
                .map_err(|_| "passwords_sha256 holds SHA-256 digests: 64 hex digits each".to_string())?;
        }
        Ok(user)
    }

    /// What is wrong with the entry.
    pub(crate) fn check(&self, table: &CommandTable) -> Result<(), ConfigError> {
        let user = self
            .user(table)
            .map_err(|why| ConfigError::User(format!("user {:?}: {why}", self.name)))?;
        if !user.has_credentials() {
            return Err(ConfigError::User(format!(
                "user {:?}: give a password, passwords_sha256, or nopass in acl",
                self.name
            )));
        }
        Ok(())
    }
}

/// What is wrong with the users marked `password_only`: one without a
/// password of its own (`nopass`), or a password two of them share, so
/// that `AUTH <password>` could not tell them apart.
pub(crate) fn check_password_only(users: &[UserConfig], table: &CommandTable) -> Result<(), ConfigError> {
    let mut seen: Vec<(&str, [u8; 32])> = Vec::new();
    for entry in users.iter().filter(|entry| entry.password_only) {
        let Ok(user) = entry.user(table) else {
            continue;
        };
        if user.passwords().is_empty() {
            return Err(ConfigError::User(format!(
                "user {:?}: a password_only user needs a password of its own",
                entry.name
            )));
        }
        for digest in user.passwords() {
            if let Some((other, _)) = seen.iter().find(|(_, known)| known == digest) {
                return Err(ConfigError::User(format!(
                    "users {other:?} and {:?}: password_only users must not share a password",
                    entry.name
                )));
            }
            seen.push((&entry.name, *digest));
        }
    }
    Ok(())
}

/// A user a client can log in as.
#[derive(Debug)]
pub struct Account {
    /// Its flags, passwords and ACL.
    pub acl: Arc<User>,
    /// Its tenant's number ([`Tenants::number`]); 0 for an operator.
    pub tenant: u16,
    /// `AUTH <password>` alone may log in as it.
    pub password_only: bool,
}

/// Every user, by name. Without `[[users]]`, only `default`, who needs no
/// password and may do anything (Valkey's default user).
#[derive(Clone, Debug)]
pub struct Users {
    all: Arc<[Account]>,
}

impl Users {
    /// From the configuration's users (checked by [`crate::ProxyConfig::validate`];
    /// an entry that fails anyway becomes a user that cannot log in).
    pub fn new(config: &[UserConfig], tenants: &Tenants, table: &CommandTable) -> Users {
        let mut all: Vec<Account> = config
            .iter()
            .map(|entry| Account {
                acl: Arc::new(entry.user(table).unwrap_or_else(|_| User::new(&entry.name))),
                tenant: tenants.number(entry.tenant.as_deref()),
                password_only: entry.password_only,
            })
            .collect();
        if config.is_empty() {
            let mut default = User::new("default");
            // Valid rules: the table is not consulted for these.
            let _ = default.apply("on nopass +@all ~* &*", table);
            all.push(Account {
                acl: Arc::new(default),
                tenant: 0,
                password_only: false,
            });
        }
        all.sort_by(|a, b| a.acl.name().cmp(b.acl.name()));
        Users { all: all.into() }
    }

    /// The user named `name`.
    pub fn get(&self, name: &str) -> Option<&Account> {
        self.all.iter().find(|account| account.acl.name() == name)
    }

    /// The user `name` when `password` logs it in.
    pub fn log_in(&self, name: &str, password: &[u8]) -> Option<&Account> {
        self.get(name).filter(|account| account.acl.accepts(password))
    }

    /// The user `AUTH <password>` logs in as: the `password_only` user whose
    /// password it is, else `default`.
    pub fn log_in_by_password(&self, password: &[u8]) -> Option<&Account> {
        self.all
            .iter()
            .find(|account| account.password_only && account.acl.accepts(password))
            .or_else(|| self.log_in("default", password))
    }

    /// Every user, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Account> {
        self.all.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(acl: Option<&str>) -> UserConfig {
        UserConfig {
            name: "app".into(),
            password: Some("s1".into()),
            // SHA-256 of "b1", in capitals: accepted.
            passwords_sha256: vec!["7DC96F776C8423E57A2785489A3F9C43FB6E756876D6AD9A9CAC4AA4E72EC193".into()],
            acl: acl.map(Into::into),
            ..UserConfig::default()
        }
    }

    #[test]
    fn a_user_takes_its_passwords_and_rules() {
        let table = CommandTable::builtin();
        let user = entry(None).user(&table).unwrap();
        assert!(user.accepts(b"s1") && user.accepts(b"b1") && !user.accepts(b"s2"));
        assert!(user.is_unrestricted());
        let user = entry(Some("on +@read ~*")).user(&table).unwrap();
        assert!(user.accepts(b"s1") && !user.is_unrestricted());
        // Rules as Valkey takes them: without `on`, the user is off.
        assert!(!entry(Some("+@all ~* &*")).user(&table).unwrap().accepts(b"s1"));
    }

    #[test]
    fn password_only_users_have_passwords_of_their_own() {
        let table = CommandTable::builtin();
        let only = |name: &str, password: &str| UserConfig {
            name: name.into(),
            password: Some(password.into()),
            password_only: true,
            ..UserConfig::default()
        };
        assert!(check_password_only(&[only("a", "p1"), only("b", "p2")], &table).is_ok());
        let error = check_password_only(&[only("a", "p1"), only("b", "p1")], &table).unwrap_err();
        assert_eq!(
            error.to_string(),
            "users \"a\" and \"b\": password_only users must not share a password"
        );
        let nopass = UserConfig {
            acl: Some("on nopass".into()),
            password: None,
            ..only("c", "")
        };
        assert!(check_password_only(&[nopass], &table).is_err());
    }

    #[test]
    fn bad_entries_are_named_with_valkeys_reason() {
        let table = CommandTable::builtin();
        let error = |entry: UserConfig| entry.check(&table).unwrap_err().to_string();
        assert_eq!(
            error(entry(Some("on +nosuch"))),
            "user \"app\": Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"
        );
        let mut broken = entry(None);
        broken.passwords_sha256.push("abc".into());
        assert_eq!(
            error(broken),
            "user \"app\": passwords_sha256 holds SHA-256 digests: 64 hex digits each"
        );
        let mut bare = UserConfig {
            name: "app".into(),
            ..UserConfig::default()
        };
        assert!(error(bare.clone()).contains("give a password"));
        bare.acl = Some("on nopass".into());
        assert!(bare.check(&table).is_ok());
    }
}
