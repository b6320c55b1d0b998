//! Finding the keys of a request through its command's key specs, following
//! Valkey's `getKeysUsingKeySpecs` step by step.

use resp::{number::parse_i64, Args};

use super::spec::{BeginSearch, CommandSpec, FindKeys, KeySpec};

/// Positions (argument indexes) of every key of `args` according to
/// `spec`, in spec order. Positions that fall outside the arguments are
/// skipped, as Valkey skips them for variadic commands; a spec whose key count
/// cannot be read yields nothing (the server reports the syntax error).
pub fn key_positions(spec: &CommandSpec, args: Args<'_>) -> Vec<usize> {
    let mut positions = Vec::new();
    for_each_key(spec, args, |i| positions.push(i));
    positions
}

/// Calls `visit` with the position of every key, without allocating.
pub fn for_each_key(spec: &CommandSpec, args: Args<'_>, mut visit: impl FnMut(usize)) {
    for_each_key_access(spec, args, |position, _| visit(position));
}

/// Calls `visit` with the position of every key and whether the command
/// may change that key (its key spec says `RW`, `OW` or `RM`).
pub fn for_each_key_access(spec: &CommandSpec, args: Args<'_>, mut visit: impl FnMut(usize, bool)) {
    for_each_key_spec(spec, args, |position, key_spec| visit(position, key_spec.writes));
}

/// Calls `visit` with the position of every key and the key spec that
/// found it ([`KeySpec::LEGACY`] for legacy positions; SORT's STORE
/// destination as a key it writes without reading), so that an ACL can
/// tell reads from writes.
pub fn for_each_key_spec(spec: &CommandSpec, args: Args<'_>, mut visit: impl FnMut(usize, &KeySpec)) {
    if spec.name == "migrate" {
        // With KEYS, MIGRATE's single-key slot holds an empty placeholder
        // (Valkey's `migrateGetKeys` skips it).
        from_key_specs(spec, args, &mut |i, key_spec| {
            if !(i == 3 && args[3].is_empty()) {
                visit(i, key_spec)
            }
        });
        return;
    }
    if let Some(key_spec) = variable_flags(spec, args) {
        visit(1, &key_spec);
        return;
    }
    from_key_specs(spec, args, &mut visit);
    if spec.name == "sort" {
        // SORT's STORE spec is `unknown` (the keyword may appear anywhere);
        // Valkey finds it with `sortGetKeys`, and so do we.
        if let Some(position) = sort_store_key(args) {
            visit(position, &SORT_STORE);
        }
    }
}

/// How SET and BITFIELD use their key, which depends on their arguments
/// (their key spec says `variable_flags`): Valkey's `setGetKeys` and
/// `bitfieldGetKeys`.
fn variable_flags(spec: &CommandSpec, args: Args<'_>) -> Option<KeySpec> {
    let (access, changes) = match spec.name.as_str() {
        "set" => {
            let get = args.iter().skip(3).any(|arg| arg.eq_ignore_ascii_case(b"get"));
            (get, true)
        }
        "bitfield" => (true, !bitfield_reads_only(args)),
        _ => return None,
    };
    if args.len() < 2 {
        return None;
    }
    let declared = spec.key_specs.first().cloned().unwrap_or(KeySpec::LEGACY);
    Some(KeySpec {
        access,
        changes,
        ..declared
    })
}

/// True when BITFIELD's operations are all GET (with OVERFLOW); a syntax
/// error counts as a write, as in Valkey.
fn bitfield_reads_only(args: Args<'_>) -> bool {
    let mut i = 2;
    while i < args.len() {
        let rest = args.len() - i - 1;
        let arg = &args[i];
        if arg.eq_ignore_ascii_case(b"get") && rest >= 2 {
            i += 3;
        } else if arg.eq_ignore_ascii_case(b"overflow") && rest >= 1 {
            i += 2;
        } else {
            return false;
        }
    }
    true
}

/// SORT's STORE destination: overwritten, never read.
const SORT_STORE: KeySpec = KeySpec {
    writes: true,
    access: false,
    changes: true,
    ..KeySpec::LEGACY
};

/// Valkey's `sortGetKeys`: skip the arguments of LIMIT, GET and BY, and take
/// the key after the last STORE.
fn sort_store_key(args: Args<'_>) -> Option<usize> {
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let arg = &args[i];
        if arg.eq_ignore_ascii_case(b"limit") {
            i += 2;
        } else if arg.eq_ignore_ascii_case(b"get") || arg.eq_ignore_ascii_case(b"by") {
            i += 1;
        } else if arg.eq_ignore_ascii_case(b"store") && i + 1 < args.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    store
}

fn from_key_specs(spec: &CommandSpec, args: Args<'_>, visit: &mut impl FnMut(usize, &KeySpec)) {
    let argc = args.len() as i64;
    if spec.key_specs.is_empty() {
        // Commands with only legacy key positions (old modules).
        let (first, last, step) = spec.legacy_keys;
        if first <= 0 || step <= 0 {
            return;
        }
        let last = if last < 0 { argc + last } else { last };
        let mut i = first;
        let legacy = KeySpec {
            writes: spec.flags.contains(super::Flags::WRITE),
            ..KeySpec::LEGACY
        };
        while i <= last && i < argc {
            visit(i as usize, &legacy);
            i += step;
        }
        return;
    }
    for key_spec in &spec.key_specs {
        let first = match &key_spec.begin {
            BeginSearch::Index(index) => *index,
            BeginSearch::Keyword { keyword, start_from } => match find_keyword(args, keyword, *start_from) {
                Some(after) => after,
                None => continue,
            },
            BeginSearch::Unknown => continue,
        };
        let (first, last, step) = match key_spec.find {
            FindKeys::Range {
                last_key,
                key_step,
                limit,
            } => {
                let last = if last_key >= 0 {
                    first + last_key
                } else if limit <= 0 {
                    argc + last_key
                } else {
                    first + ((argc - first) / limit + last_key)
                };
                (first, last, key_step)
            }
            FindKeys::KeyNum {
                key_num_idx,
                first_key,
                key_step,
            } => {
                let Some(count_arg) = args.get((first + key_num_idx) as usize) else {
                    continue;
                };
                let Some(count) = parse_i64(count_arg).filter(|n| *n >= 0) else {
                    continue;
                };
                let first = first + first_key;
                (first, first + (count - 1) * key_step.max(1), key_step)
            }
            FindKeys::Unknown => continue,
        };
        if step <= 0 || first <= 0 {
            continue;
        }
        let mut i = first;
        while i <= last {
            if i >= argc {
                break;
            }
            visit(i as usize, key_spec);
            i += step;
        }
    }
}

/// The position after `keyword`, searched as Valkey does: from
/// `start_from` forwards up to (not including) the last argument, or, for a
/// negative `start_from`, from the end backwards down to (not including)
/// argument 1.
fn find_keyword(args: Args<'_>, keyword: &[u8], start_from: i64) -> Option<i64> {
    let argc = args.len() as i64;
    let (start, end) = if start_from > 0 {
        (start_from, argc - 1)
    } else {
        (argc + start_from, 1)
    };
    let step = if start <= end { 1 } else { -1 };
    let mut i = start;
    while i != end {
        if i < 1 || i >= argc {
            break;
        }
        if args[i as usize].eq_ignore_ascii_case(keyword) {
            return Some(i + 1);
        }
        i += step;
    }
    None
}
