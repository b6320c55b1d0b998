//! [`Categories`]: a command's ACL categories (`@read`, `@admin`, ...), as
//! `COMMAND INFO` lists them, for the proxy's ACL checks.

/// Valkey's ACL categories, in the order of its `ACLDefaultCommandCategories`
/// (`src/acl.c`); a category's bit is its index here.
pub const NAMES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// A set of ACL categories. Categories a module adds are not kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Categories(u32);

impl Categories {
    /// No category.
    pub const NONE: Categories = Categories(0);

    /// The category named `name` (any case, with or without the leading
    /// `@`); `None` for a name Valkey does not define.
    pub fn named(name: &[u8]) -> Option<Categories> {
        let name = name.strip_prefix(b"@").unwrap_or(name);
        NAMES
            .iter()
            .position(|known| known.as_bytes().eq_ignore_ascii_case(name))
            .map(|bit| Categories(1 << bit))
    }

    /// The categories listed in a `COMMAND INFO` entry's field (names with
    /// `@`); unknown names are skipped.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a [u8]>) -> Categories {
        names
            .into_iter()
            .filter_map(Categories::named)
            .fold(Categories::NONE, Categories::union)
    }

    /// Both sets.
    pub fn union(self, other: Categories) -> Categories {
        Categories(self.0 | other.0)
    }

    /// True when every category of `other` is in this set.
    pub fn contains(self, other: Categories) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when any category of `other` is in this set.
    pub fn intersects(self, other: Categories) -> bool {
        self.0 & other.0 != 0
    }

    /// The names of the categories in this set, in Valkey's order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        NAMES
            .iter()
            .enumerate()
            .filter(move |(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, name)| *name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CommandTable;

    #[test]
    fn names_round_trip() {
        for name in NAMES {
            let one = Categories::named(format!("@{}", name.to_uppercase()).as_bytes()).unwrap();
            assert_eq!(one.names().collect::<Vec<_>>(), [name]);
        }
        assert_eq!(Categories::named(b"@nosuch"), None);
    }

    #[test]
    fn the_builtin_table_knows_each_commands_categories() {
        let table = CommandTable::builtin();
        let categories = |name: &[u8]| table.get(name).expect("a known command").categories;
        let get = categories(b"get");
        assert_eq!(get.names().collect::<Vec<_>>(), ["read", "string", "fast"]);
        let config = table
            .get(b"config")
            .and_then(|spec| spec.subcommand(b"set"))
            .expect("config|set")
            .categories;
        let admin = Categories::named(b"admin").unwrap();
        assert!(config.contains(admin.union(Categories::named(b"dangerous").unwrap())));
        assert!(!get.intersects(admin));
    }
}
