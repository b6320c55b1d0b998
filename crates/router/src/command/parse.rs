//! Reading a `COMMAND INFO` reply (RESP2 or RESP3) into [`CommandSpec`]s.

use std::sync::Arc;

use resp::frame::field;
use resp::Frame;

use super::category::Categories;
use super::spec::{BeginSearch, CommandSpec, FindKeys, Flags, KeySpec, RequestPolicy, ResponsePolicy};

/// Parses every entry of a `COMMAND INFO` (or `COMMAND`) reply. Null
/// entries (commands the server does not know) and malformed entries are
/// skipped.
pub fn command_info(reply: &Frame) -> Vec<CommandSpec> {
    reply
        .as_array()
        .unwrap_or_default()
        .iter()
        .filter_map(entry)
        .collect()
}

/// Parses one `COMMAND INFO` entry.
pub fn entry(frame: &Frame) -> Option<CommandSpec> {
    let items = frame.as_array()?;
    let name = String::from_utf8_lossy(items.first()?.as_bytes()?).to_ascii_lowercase();
    let arity = items.get(1)?.as_integer()?;
    let flags = strings(items.get(2)?)
        .iter()
        .fold(Flags::default(), |flags, name| {
            flags.union(Flags::from_name(name))
        });
    let legacy_keys = (
        items.get(3)?.as_integer()?,
        items.get(4)?.as_integer()?,
        items.get(5)?.as_integer()?,
    );
    let listed = items.get(6).map(strings).unwrap_or_default();
    let categories = Categories::from_names(listed.iter().map(Vec::as_slice));
    let mut request_policy = RequestPolicy::Default;
    let mut response_policy = ResponsePolicy::Default;
    for tip in items.get(7).map(strings).unwrap_or_default() {
        match tip.split(|&b| b == b':').collect::<Vec<_>>()[..] {
            [b"request_policy", policy] => request_policy = request(policy),
            [b"response_policy", policy] => response_policy = response(policy),
            _ => {}
        }
    }
    let key_specs = items
        .get(8)
        .and_then(Frame::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(key_spec)
        .collect();
    let subcommands = items
        .get(9)
        .and_then(Frame::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(entry)
        .map(Arc::new)
        .collect();
    Some(CommandSpec {
        name,
        id: 0,
        arity,
        flags,
        categories,
        legacy_keys,
        key_specs,
        request_policy,
        response_policy,
        subcommands,
        info: frame.clone(),
    })
}

fn key_spec(frame: &Frame) -> Option<KeySpec> {
    let fields = frame.clone().into_pairs()?;
    let flags = field(&fields, "flags").map(strings).unwrap_or_default();
    let has = |name: &[u8]| flags.iter().any(|f| f.eq_ignore_ascii_case(name));
    let not_key = has(b"not_key");
    let writes = has(b"RW") || has(b"OW") || has(b"RM");
    let access = has(b"access");
    let changes = has(b"insert") || has(b"delete") || has(b"update");
    let begin_fields = field(&fields, "begin_search")?.clone().into_pairs()?;
    let begin_spec = field(&begin_fields, "spec")
        .and_then(|s| s.clone().into_pairs())
        .unwrap_or_default();
    let begin = match field(&begin_fields, "type")
        .and_then(Frame::as_bytes)
        .map(|b| &b[..])
    {
        Some(b"index") => BeginSearch::Index(number(&begin_spec, "index")?),
        Some(b"keyword") => BeginSearch::Keyword {
            keyword: field(&begin_spec, "keyword")?.as_bytes()?.to_vec(),
            start_from: number(&begin_spec, "startfrom")?,
        },
        _ => BeginSearch::Unknown,
    };
    let find_fields = field(&fields, "find_keys")?.clone().into_pairs()?;
    let find_spec = field(&find_fields, "spec")
        .and_then(|s| s.clone().into_pairs())
        .unwrap_or_default();
    let find = match field(&find_fields, "type")
        .and_then(Frame::as_bytes)
        .map(|b| &b[..])
    {
        Some(b"range") => FindKeys::Range {
            last_key: number(&find_spec, "lastkey")?,
            key_step: number(&find_spec, "keystep")?,
            limit: number(&find_spec, "limit")?,
        },
        Some(b"keynum") => FindKeys::KeyNum {
            key_num_idx: number(&find_spec, "keynumidx")?,
            first_key: number(&find_spec, "firstkey")?,
            key_step: number(&find_spec, "keystep")?,
        },
        _ => FindKeys::Unknown,
    };
    Some(KeySpec {
        begin,
        find,
        not_key,
        writes,
        access,
        changes,
    })
}

fn request(policy: &[u8]) -> RequestPolicy {
    match policy {
        b"all_nodes" => RequestPolicy::AllNodes,
        b"all_shards" => RequestPolicy::AllShards,
        b"multi_shard" => RequestPolicy::MultiShard,
        b"special" => RequestPolicy::Special,
        _ => RequestPolicy::Default,
    }
}

fn response(policy: &[u8]) -> ResponsePolicy {
    match policy {
        b"one_succeeded" => ResponsePolicy::OneSucceeded,
        b"all_succeeded" => ResponsePolicy::AllSucceeded,
        b"agg_logical_and" => ResponsePolicy::AggLogicalAnd,
        b"agg_logical_or" => ResponsePolicy::AggLogicalOr,
        b"agg_min" => ResponsePolicy::AggMin,
        b"agg_max" => ResponsePolicy::AggMax,
        b"agg_sum" => ResponsePolicy::AggSum,
        b"special" => ResponsePolicy::Special,
        _ => ResponsePolicy::Default,
    }
}

fn strings(frame: &Frame) -> Vec<Vec<u8>> {
    frame
        .as_array()
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f.as_bytes().map(|b| b.to_vec()))
        .collect()
}

fn number(fields: &[(Frame, Frame)], name: &str) -> Option<i64> {
    field(fields, name)?.as_integer()
}
