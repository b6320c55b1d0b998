//! The filters of CLIENT LIST and CLIENT KILL, as Valkey 9.1 parses and
//! applies them: `ID id [id ...]`, `TYPE`, `ADDR`, `LADDR`, `IP`, `USER`,
//! `DB`, `NAME`, `LIB-NAME`, `LIB-VER` (each also as `NOT-...`), `MAXAGE`,
//! `IDLE` and `SKIPME`. Every filter given must match.

use resp::number::parse_i64;
use resp::Frame;

use crate::clients::ClientInfo;

/// The conditions a client must meet.
#[derive(Debug, Default)]
pub struct ClientFilter {
    conditions: Vec<Condition>,
    /// SKIPME: `Some(true)` leaves the caller out.
    skip_me: Option<bool>,
}

#[derive(Debug)]
struct Condition {
    test: Test,
    negated: bool,
}

#[derive(Debug)]
enum Test {
    Id(Vec<u64>),
    Type(ClientType),
    Addr(String),
    Laddr(String),
    Ip(String),
    User(String),
    Db(u32),
    Name(String),
    LibName(String),
    LibVer(String),
    /// At least this many seconds old.
    MaxAge(u64),
    /// Idle for at least this many seconds.
    Idle(u64),
}

/// Valkey's client types. The proxy's clients are all normal or pubsub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientType {
    Normal,
    Pubsub,
    Replica,
    Primary,
}

/// Databases a DB filter may name (Valkey's default of 16).
const DATABASES: i64 = 16;

impl ClientFilter {
    /// Parses `args` (the filter words after the subcommand). `known_user`
    /// says whether a USER name exists, as Valkey refuses an unknown one.
    ///
    /// # Errors
    /// Valkey's error for the first word it would refuse.
    pub fn parse(args: &[bytes::Bytes], known_user: impl Fn(&str) -> bool) -> Result<ClientFilter, Frame> {
        let mut filter = ClientFilter::default();
        let mut i = 0;
        while i < args.len() {
            let option = String::from_utf8_lossy(&args[i]).to_ascii_lowercase();
            let (negated, name) = match option.strip_prefix("not-") {
                Some(name) => (true, name),
                None => (false, option.as_str()),
            };
            let value = args.get(i + 1).map(|v| String::from_utf8_lossy(v).into_owned());
            let Some(value) = value else {
                return Err(syntax_error());
            };
            i += 2;
            let test = match name {
                "id" => {
                    let mut ids = vec![client_id(&value)?];
                    while let Some(id) = args.get(i).and_then(|a| parse_i64(a)) {
                        ids.push(positive_id(id)?);
                        i += 1;
                    }
                    Test::Id(ids)
                }
                "type" => Test::Type(client_type(&value)?),
                "addr" => Test::Addr(value),
                "laddr" => Test::Laddr(value),
                "ip" => Test::Ip(value),
                "user" if known_user(&value) => Test::User(value),
                "user" => return Err(Frame::error(format!("ERR No such user '{value}'"))),
                "db" => Test::Db(database(&value)?),
                "name" => Test::Name(value),
                "lib-name" => Test::LibName(value),
                "lib-ver" => Test::LibVer(value),
                "maxage" if !negated => Test::MaxAge(seconds(&value, "maxage")?),
                "idle" if !negated => Test::Idle(seconds(&value, "idle")?),
                "skipme" if !negated => {
                    filter.skip_me = Some(match value.to_ascii_lowercase().as_str() {
                        "yes" => true,
                        "no" => false,
                        _ => return Err(syntax_error()),
                    });
                    continue;
                }
                _ => return Err(syntax_error()),
            };
            filter.conditions.push(Condition { test, negated });
        }
        Ok(filter)
    }

    /// Whether SKIPME was given, and its value.
    pub fn skip_me(&self) -> Option<bool> {
        self.skip_me
    }

    /// True when `client` meets every condition.
    pub fn matches(&self, client: &ClientInfo) -> bool {
        self.conditions
            .iter()
            .all(|condition| condition.test.holds(client) != condition.negated)
    }
}

impl Test {
    fn holds(&self, client: &ClientInfo) -> bool {
        match self {
            Test::Id(ids) => ids.contains(&client.id),
            Test::Type(kind) => {
                *kind
                    == if client.is_pubsub() {
                        ClientType::Pubsub
                    } else {
                        ClientType::Normal
                    }
            }
            Test::Addr(addr) => client.addr.to_string() == *addr,
            Test::Laddr(addr) => client.laddr.to_string() == *addr,
            Test::Ip(ip) => client.addr.ip().to_string() == *ip,
            Test::User(user) => client.user() == *user,
            Test::Db(db) => client.db() == *db,
            Test::Name(name) => client.name() == *name,
            Test::LibName(name) => client.lib().0 == *name,
            Test::LibVer(version) => client.lib().1 == *version,
            Test::MaxAge(secs) => client.age().as_secs() >= *secs,
            Test::Idle(secs) => client.idle().as_secs() >= *secs,
        }
    }
}

fn syntax_error() -> Frame {
    Frame::error("ERR syntax error")
}

/// The first id after ID: a number, or a syntax error.
fn client_id(value: &str) -> Result<u64, Frame> {
    positive_id(parse_i64(value.as_bytes()).ok_or_else(syntax_error)?)
}

fn positive_id(id: i64) -> Result<u64, Frame> {
    u64::try_from(id)
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| Frame::error("ERR client-id should be greater than 0"))
}

fn client_type(value: &str) -> Result<ClientType, Frame> {
    Ok(match value.to_ascii_lowercase().as_str() {
        "normal" => ClientType::Normal,
        "pubsub" => ClientType::Pubsub,
        "replica" | "slave" => ClientType::Replica,
        "primary" | "master" => ClientType::Primary,
        _ => return Err(Frame::error(format!("ERR Unknown client type '{value}'"))),
    })
}

fn database(value: &str) -> Result<u32, Frame> {
    let db = parse_i64(value.as_bytes())
        .ok_or_else(|| Frame::error("ERR DB is not an integer or out of range"))?;
    if !(0..DATABASES).contains(&db) {
        return Err(Frame::error(format!(
            "ERR DB number should be between 0 and {}",
            DATABASES - 1
        )));
    }
    Ok(db as u32)
}

/// A MAXAGE or IDLE value: whole seconds, more than 0.
fn seconds(value: &str, what: &str) -> Result<u64, Frame> {
    let secs = parse_i64(value.as_bytes())
        .ok_or_else(|| Frame::error(format!("ERR {what} is not an integer or out of range")))?;
    u64::try_from(secs)
        .ok()
        .filter(|secs| *secs > 0)
        .ok_or_else(|| Frame::error(format!("ERR {what} should be greater than 0")))
}
