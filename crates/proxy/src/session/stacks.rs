//! The services a session sends commands to: the assembled stack (or the
//! embedder's layers over it) and the gate beside it, for each backend
//! group.

use std::future::Future;

use router::{Command, Reply};
use tower::Service;

/// The service a session sends commands to: the assembled
/// [`crate::stack::Core`] stack,
/// or that stack wrapped in the embedder's own layers.
pub trait StackService:
    Service<Command, Response = Reply, Error = router::Error, Future = Self::Fut> + Clone + Send + 'static
{
    /// The service's future. `Unpin`, so that the session can keep the
    /// futures of a client's requests in a plain queue.
    type Fut: Future<Output = Result<Reply, router::Error>> + Send + Unpin + 'static;
}

impl<S> StackService for S
where
    S: Service<Command, Response = Reply, Error = router::Error> + Clone + Send + 'static,
    S::Future: Send + Unpin + 'static,
{
    type Fut = S::Future;
}

/// The two services a session sends commands to, both made of the same
/// layers ([`crate::gate`]): `run` carries commands out, `gate` only
/// admits the commands the session carries out itself. With backend
/// groups, there is such a pair for each, and the session uses its
/// tenant's ([`Stacks::follow`]).
#[derive(Clone, Debug)]
pub struct Stacks<S, G> {
    /// The layers over the stack that carries commands out.
    pub run: S,
    /// The same layers over [`crate::gate::AdmitAll`].
    pub gate: G,
    /// Every backend group's pair, the default backend's first (a vector:
    /// the services need not be `Sync`; cloned once per client).
    groups: Vec<(S, G)>,
    /// The group `run` and `gate` are of.
    current: usize,
}

impl<S: Clone, G: Clone> Stacks<S, G> {
    /// The pairs of every backend group, the default backend's first (at
    /// least that one).
    pub fn new(default: (S, G), groups: Vec<(S, G)>) -> Self {
        let (run, gate) = default.clone();
        Stacks {
            run,
            gate,
            groups: std::iter::once(default).chain(groups).collect(),
            current: 0,
        }
    }

    /// Every pair wrapped by `run_layer` and `gate_layer`.
    pub fn map<S2: Clone, G2: Clone>(
        self,
        run_layer: impl Fn(S) -> S2,
        gate_layer: impl Fn(G) -> G2,
    ) -> Stacks<S2, G2> {
        let mut all = self
            .groups
            .into_iter()
            .map(|(run, gate)| (run_layer(run), gate_layer(gate)));
        let default = all.next().expect("the default backend's pair is always there");
        Stacks::new(default, all.collect())
    }

    /// Uses the pair of backend group `group` (0: the default backend).
    pub fn follow(&mut self, group: usize) {
        if group == self.current {
            return;
        }
        if let Some((run, gate)) = self.groups.get(group) {
            self.run = run.clone();
            self.gate = gate.clone();
            self.current = group;
        }
    }
}
