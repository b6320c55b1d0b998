//! The command table: what the proxy knows about each command.
//!
//! - [`spec`]: the [`CommandSpec`], [`KeySpec`], flags and tips.
//! - [`category`]: ACL [`Categories`].
//! - [`parse`]: reading a `COMMAND INFO` reply into specs.
//! - [`keys`]: finding key positions through key specs.
//! - [`table`]: the [`CommandTable`], the built-in table merged with the live one.

pub mod category;
pub mod keys;
mod overrides;
pub mod parse;
pub mod spec;
pub mod table;

pub use category::Categories;
pub use spec::{BeginSearch, CommandSpec, FindKeys, Flags, KeySpec, RequestPolicy, ResponsePolicy};
pub use table::CommandTable;
