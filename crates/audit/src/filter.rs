//! [`Filter`]: which clients and commands the audit log records.

use std::net::IpAddr;

use ipnet::IpNet;
use middleware::acl::User;
use resp::Args;
use router::command::Flags;
use router::{CommandSpec, CommandTable};

use crate::config::{AuditConfig, EventKind, Payload};

/// The audit log's filters, from [`AuditConfig`].
#[derive(Clone, Debug)]
pub struct Filter {
    events: Vec<EventKind>,
    /// The `commands` rules, as the command part of an ACL user.
    commands: User,
    read_sample: f64,
    users: Vec<String>,
    users_exclude: Vec<String>,
    tenants: Vec<String>,
    tenants_exclude: Vec<String>,
    networks: Vec<IpNet>,
    networks_exclude: Vec<IpNet>,
    keys: Vec<Vec<u8>>,
    /// What a command record holds of the request.
    pub payload: Payload,
    /// The longest argument shown.
    pub max_arg_bytes: usize,
}

impl Filter {
    /// The filters `config` describes, its command rules checked against
    /// `table`.
    ///
    /// # Errors
    /// A rule or a network that does not parse, in words.
    pub fn new(config: &AuditConfig, table: &CommandTable) -> Result<Filter, String> {
        let mut commands = User::new("audit");
        commands
            .apply(&format!("on nopass ~* &* {}", config.commands), table)
            .map_err(|error| format!("commands: {error}"))?;
        let networks = |list: &[String]| {
            list.iter()
                .map(|net| {
                    net.parse::<IpNet>()
                        .or_else(|_| net.parse::<IpAddr>().map(IpNet::from))
                        .map_err(|_| format!("{net:?} is not a network (10.0.0.0/8) or an address"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Filter {
            events: config.events.clone(),
            commands,
            read_sample: config.read_sample,
            users: config.users.clone(),
            users_exclude: config.users_exclude.clone(),
            tenants: config.tenants.clone(),
            tenants_exclude: config.tenants_exclude.clone(),
            networks: networks(&config.networks)?,
            networks_exclude: networks(&config.networks_exclude)?,
            keys: config.keys.iter().map(|glob| glob.as_bytes().to_vec()).collect(),
            payload: config.payload,
            max_arg_bytes: config.max_arg_bytes,
        })
    }

    /// True when events of `kind` are recorded.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.contains(&kind)
    }

    /// True when what a client of `user` and `tenant` from `addr` does is
    /// recorded.
    pub fn selects_client(&self, user: &str, tenant: &str, addr: IpAddr) -> bool {
        let listed = |list: &[String], name: &str| list.iter().any(|entry| entry == name);
        let in_net = |list: &[IpNet]| list.iter().any(|net| net.contains(&addr));
        (self.users.is_empty() || listed(&self.users, user))
            && !listed(&self.users_exclude, user)
            && (self.tenants.is_empty() || listed(&self.tenants, tenant))
            && !listed(&self.tenants_exclude, tenant)
            && (self.networks.is_empty() || in_net(&self.networks))
            && !in_net(&self.networks_exclude)
    }

    /// True when the `commands` rules select `spec` with `args` and, with
    /// `keys` globs, one of its keys matches: a `command` record is made.
    /// The commands every user may run before logging in (AUTH, HELLO),
    /// which no ACL rule refuses, are `auth` events, never selected here.
    pub fn rules_select(&self, spec: &CommandSpec, args: Args<'_>) -> bool {
        !spec.flags.contains(Flags::NO_AUTH)
            && self.commands.check(spec, args).is_ok()
            && self.keys_match(spec, args)
    }

    /// True when a read-only command the rules leave out is picked by
    /// `read_sample` (a new draw at each call).
    pub fn sampled(&self, spec: &CommandSpec, args: Args<'_>) -> bool {
        self.read_sample > 0.0
            && spec.flags.contains(Flags::READONLY)
            && rand::random::<f64>() < self.read_sample
            && self.keys_match(spec, args)
    }

    fn keys_match(&self, spec: &CommandSpec, args: Args<'_>) -> bool {
        if self.keys.is_empty() {
            return true;
        }
        let mut matched = false;
        router::command::keys::for_each_key(spec, args, |position| {
            matched |= self
                .keys
                .iter()
                .any(|glob| middleware::namespace::glob::matches(glob, &args[position]));
        });
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_of<'a>(table: &'a CommandTable, request: &resp::Request) -> &'a CommandSpec {
        table.lookup(request).unwrap()
    }

    #[test]
    fn commands_follow_acl_rules_over_categories_and_keys_follow_globs() {
        let table = CommandTable::builtin();
        let config = AuditConfig {
            commands: "+@write +@admin -del".into(),
            keys: vec!["user:*".into()],
            users_exclude: vec!["exporter".into()],
            networks_exclude: vec!["10.9.0.0/16".into()],
            ..AuditConfig::default()
        };
        let filter = Filter::new(&config, &table).unwrap();
        let selects = |args: &[&str]| {
            let request = resp::Request::from_args(args.to_vec());
            filter.rules_select(spec_of(&table, &request), request.args())
        };
        assert!(selects(&["SET", "user:1", "x"]));
        assert!(!selects(&["SET", "order:1", "x"]));
        assert!(!selects(&["GET", "user:1"]));
        assert!(!selects(&["DEL", "user:1"]));
        assert!(!selects(&["PING"]));
        assert!(!selects(&["AUTH", "user:1", "pw"]));
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(filter.selects_client("app", "", local));
        assert!(!filter.selects_client("exporter", "", local));
        assert!(!filter.selects_client("app", "", "10.9.3.4".parse().unwrap()));
        // Reads the rules leave out, sampled.
        let get = resp::Request::from_args(["GET", "user:1"]);
        let all_reads = Filter::new(
            &AuditConfig {
                read_sample: 1.0,
                ..config.clone()
            },
            &table,
        )
        .unwrap();
        assert!(all_reads.sampled(spec_of(&table, &get), get.args()));
        assert!(!filter.sampled(spec_of(&table, &get), get.args()));
        let bad = AuditConfig {
            commands: "+@nosuch".into(),
            ..AuditConfig::default()
        };
        assert!(Filter::new(&bad, &table).unwrap_err().contains("+@nosuch"));
    }
}
