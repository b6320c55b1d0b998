//! Any command of the table with any arguments: where the router sends
//! it, the keys it finds, how a multi-key command splits by slot, and a
//! tenant's rewrite of its keys never panic; every key position found is
//! an argument, a split keeps every argument once, and the rewrite keeps
//! the argument count (or adds the one pattern PUBSUB needs).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use valkey_proxy_aggregate::split;
use valkey_proxy_middleware::namespace::rewrite;
use valkey_proxy_middleware::namespace::scope::Scope;
use valkey_proxy_resp::Request;
use valkey_proxy_router::command::keys::for_each_key_access;
use valkey_proxy_router::{select, CommandSpec, CommandTable};
use valkey_proxy_topology::{Mode, Shard, Topology};

static TABLE: LazyLock<CommandTable> = LazyLock::new(CommandTable::builtin);
static NAMES: LazyLock<Vec<String>> = LazyLock::new(|| TABLE.iter().map(|spec| spec.name.clone()).collect());

fn shard(addr: &str) -> Shard {
    Shard {
        primary: addr.into(),
        replicas: vec![],
    }
}

static CLUSTER: LazyLock<Topology> = LazyLock::new(|| {
    Topology::cluster(
        vec![
            (0, 5460, shard("a:1")),
            (5461, 10922, shard("b:1")),
            (10923, 16000, shard("c:1")),
        ],
        1,
    )
});

static STANDALONE: LazyLock<Topology> = LazyLock::new(|| Topology::single(Mode::Standalone, shard("a:1"), 16));

/// Every way in which the proxy reads one request's arguments.
fn read(spec: Option<&CommandSpec>, request: &Request) {
    let _ = select(request, spec, &CLUSTER);
    let _ = select(request, spec, &STANDALONE);
    let Some(spec) = spec else { return };
    for_each_key_access(spec, request.args(), |position, _| {
        assert!(position < request.len(), "key at {position} of {}", request.len());
    });
    let _ = spec.blocks(request.args());
    if let Some(parts) = split::by_slot(spec, request) {
        let names = parts.len();
        let args: usize = parts.iter().map(|part| part.request.len() - 1).sum();
        assert_eq!(args, request.len() - 1, "{names} parts");
    }
    for scope in [
        Scope::new("t:".into(), 0, false),
        Scope::database(3),
        Scope::with_prefixes("t:".into(), "c:".into(), 2, true),
    ] {
        let rewritten = rewrite::request(spec, request, &scope);
        assert!(rewritten.len() == request.len() || rewritten.len() == request.len() + 1);
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the command; the rest, split at 0xff, are its
    // arguments (a subcommand or option the fuzzer finds by comparisons).
    let Some((&pick, rest)) = data.split_first() else { return };
    let name = NAMES[usize::from(pick) % NAMES.len()].as_bytes().to_vec();
    let args = std::iter::once(name).chain(rest.split(|&b| b == 0xff).filter(|_| !rest.is_empty()).map(<[u8]>::to_vec));
    let request = Request::from_args(args.collect::<Vec<_>>());
    read(TABLE.lookup(&request).map(|spec| &**spec), &request);
});
