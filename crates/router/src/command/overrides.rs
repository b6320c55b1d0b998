//! Where the proxy routes or merges a command differently from what
//! `COMMAND INFO` says, because it must answer as one server would.

use super::spec::{CommandSpec, Flags, RequestPolicy, ResponsePolicy};

/// Applies the proxy's own routing to `spec` (any source: the built-in
/// table or a live server's).
pub(crate) fn apply(spec: &mut CommandSpec) {
    if matches!(spec.name.as_str(), "script|kill" | "function|kill") {
        spec.flags = spec.flags.union(Flags::OWN_CONNECTION);
    }
    let (request, response) = match spec.name.as_str() {
        // Subscribers may sit on any node, replicas included.
        "pubsub|channels" | "pubsub|shardchannels" => (RequestPolicy::AllNodes, ResponsePolicy::Union),
        "pubsub|numsub" | "pubsub|shardnumsub" => (RequestPolicy::AllNodes, ResponsePolicy::SumPairs),
        "pubsub|numpat" => (RequestPolicy::AllNodes, ResponsePolicy::AggSum),
        "publish" => (RequestPolicy::Home, ResponsePolicy::Default),
        _ => return,
    };
    spec.request_policy = request;
    spec.response_policy = response;
}
