//! [`RecentCommand`]: the spec of the command a session sent last.

use std::sync::Arc;

use resp::Request;
use router::{CommandSpec, CommandTable};

/// Longest name kept.
const MAX_NAME: usize = 16;

/// The spec of the last command a session looked up, under the name as the
/// client spelled it. Pipelines repeat one command, and comparing a few
/// bytes is cheaper than lowercasing and hashing the name (about 150
/// instructions per request, measured with scripts/instructions.sh).
/// Only commands without subcommands are kept: their spec depends on the
/// name alone.
#[derive(Debug, Default)]
pub struct RecentCommand {
    name: [u8; MAX_NAME],
    len: usize,
    spec: Option<Arc<CommandSpec>>,
}

impl RecentCommand {
    /// The spec of `request`'s command in `table` (see
    /// [`CommandTable::lookup`]).
    pub fn lookup(&mut self, table: &CommandTable, request: &Request) -> Option<Arc<CommandSpec>> {
        let name = request.name();
        if let Some(spec) = &self.spec {
            if self.name[..self.len] == *name {
                return Some(spec.clone());
            }
        }
        let spec = table.lookup(request).cloned();
        match &spec {
            // A subcommand's spec (`client|list`) depends on argument 1 too.
            Some(found)
                if found.subcommands.is_empty() && !found.name.contains('|') && name.len() <= MAX_NAME =>
            {
                self.name[..name.len()].copy_from_slice(name);
                self.len = name.len();
                self.spec = Some(found.clone());
            }
            _ => self.spec = None,
        }
        spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_come_from_the_copy_and_subcommands_from_the_table() {
        let table = CommandTable::builtin();
        let mut recent = RecentCommand::default();
        let get = Request::from_args(["GET", "k"]);
        let first = recent.lookup(&table, &get).unwrap();
        assert!(Arc::ptr_eq(&first, &recent.lookup(&table, &get).unwrap()));
        assert_eq!(
            recent
                .lookup(&table, &Request::from_args(["get", "k"]))
                .unwrap()
                .name,
            "get"
        );
        let list = Request::from_args(["CLIENT", "LIST"]);
        let info = Request::from_args(["CLIENT", "INFO"]);
        assert_eq!(recent.lookup(&table, &list).unwrap().name, "client|list");
        assert_eq!(recent.lookup(&table, &info).unwrap().name, "client|info");
        assert!(recent
            .lookup(&table, &Request::from_args(["NOSUCHCOMMAND"]))
            .is_none());
    }
}
