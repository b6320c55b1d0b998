//! The statistics service and the future that times a request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use router::{Command, CommandTable, Purpose, Reply};
use tower::{Layer, Service};

use super::clock;
use super::command::CommandStats;
use super::registry::StatsRegistry;

/// [`StatsFuture`]'s `busy_ns` for a request whose CPU time is not measured.
const NOT_SAMPLED: u32 = u32::MAX;

/// `nanos` as a `u32`, capped below [`NOT_SAMPLED`] (4.3 s).
fn compact_ns(nanos: u64) -> u32 {
    u32::try_from(nanos)
        .unwrap_or(NOT_SAMPLED - 1)
        .min(NOT_SAMPLED - 1)
}

use super::registry::UNKNOWN;

/// The proxy's own work is timed for one request in this many (per
/// session, the first one included), on the monotonic clock (a vDSO call,
/// some 25 ns): its `call` and each poll of its future, pieces inside
/// which the thread never waits, so their time is CPU time. Four readings
/// or more per timed request: at one request in 16 they were 25
/// instructions per request (1% at pipeline 16, scripts/instructions.sh),
/// so one in 64. The thread's CPU clock would be a system call (0.5 µs
/// here), and its own cost would be most of what it measured. Latency is
/// measured for every request.
pub(super) const WORK_SAMPLE_EVERY: u32 = 64;

/// Adds per-command statistics to the service below.
#[derive(Clone, Debug)]
pub struct StatsLayer {
    registry: StatsRegistry,
    table: Arc<CommandTable>,
}

impl StatsLayer {
    /// Records into `registry`, naming commands through `table`.
    pub fn new(registry: StatsRegistry, table: Arc<CommandTable>) -> Self {
        StatsLayer { registry, table }
    }
}

impl<S> Layer<S> for StatsLayer {
    type Service = Stats<S>;

    fn layer(&self, inner: S) -> Stats<S> {
        Stats::new(inner, self.registry.clone(), self.table.clone())
    }
}

/// The statistics service. It looks the command up in the table (and
/// leaves the spec in the [`Command`] for the layers below).
#[derive(Clone, Debug)]
pub struct Stats<S> {
    inner: S,
    registry: StatsRegistry,
    table: Arc<CommandTable>,
    /// Requests until the next one whose CPU time is measured.
    until_sample: u32,
    /// The last read time seen and its [`clock::ticks`]: a session's
    /// requests of one read share it.
    received: Option<(Instant, u64)>,
}

impl<S> Stats<S> {
    /// Statistics around `inner`.
    pub fn new(inner: S, registry: StatsRegistry, table: Arc<CommandTable>) -> Self {
        Stats {
            inner,
            registry,
            table,
            until_sample: 0,
            received: None,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The registry this service records into.
    pub fn registry(&self) -> &StatsRegistry {
        &self.registry
    }

    /// [`clock::ticks`] of `at`, worked out once for all the requests
    /// read at that time.
    fn ticks_of(&mut self, at: Instant) -> u64 {
        match self.received {
            Some((seen, ticks)) if seen == at => ticks,
            _ => {
                let ticks = clock::ticks(at);
                self.received = Some((at, ticks));
                ticks
            }
        }
    }
}

impl<S, E> Service<Command> for Stats<S>
where
    S: Service<Command, Response = Reply, Error = E>,
{
    type Response = Reply;
    type Error = E;
    type Future = StatsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut command: Command) -> Self::Future {
        let started = match command.received {
            Some(at) => self.ticks_of(at),
            None => clock::ticks(Instant::now()),
        };
        let sampled = self.until_sample == 0;
        // Work is timed from here, not from `received`: the time between
        // is spent on the requests before this one.
        let call_started = sampled.then(Instant::now);
        if command.spec.is_none() {
            command.spec = self.table.lookup(&command.request).cloned();
        }
        let stats = match &command.spec {
            // Only admitted: whoever carries it out records it once it has
            // answered, so that its latency is all of it (an EXEC's, a
            // WAIT's), not its admission.
            _ if command.purpose == Purpose::Admit => self.registry.discarded(),
            Some(spec) => self.registry.of_tenant(command.tenant).for_spec(spec),
            None => self.registry.of_tenant(command.tenant).command(UNKNOWN),
        };
        if command.purpose != Purpose::Admit {
            cpu::touch(|| stats.clone());
        }
        let sent_before = cpu::exchanges();
        let future = self.inner.call(command);
        let exchanges = u32::try_from(cpu::exchanges() - sent_before).unwrap_or(u32::MAX);
        self.until_sample = match self.until_sample {
            0 => WORK_SAMPLE_EVERY - 1,
            n => n - 1,
        };
        StatsFuture {
            inner: future,
            stats,
            started,
            busy_ns: call_started.map_or(NOT_SAMPLED, |t| compact_ns(elapsed_ns(t))),
            exchanges,
        }
    }
}

/// Nanoseconds since `at`.
fn elapsed_ns(at: Instant) -> u64 {
    u64::try_from(at.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

pin_project_lite::pin_project! {
    /// Records the request when its reply is ready, and charges it its
    /// share of the CPU time the sessions and connections spent for it
    /// ([`cpu`]). `busy_ns` is the proxy's own work for a request in the
    /// sample: its `call` (lookup, routing, fan-out, enqueueing on a
    /// backend connection) and every poll of its future (taking the
    /// replies, merging fanned-out ones, rewriting keys).
    pub struct StatsFuture<F> {
        #[pin]
        inner: F,
        stats: Arc<CommandStats>,
        // When the request was read, in clock ticks.
        started: u64,
        // `NOT_SAMPLED`, or the nanoseconds of a sampled request's `call`
        // (a `u32`, not an `Option<Duration>`: it keeps the future, which
        // every request moves several times, within 128 bytes).
        busy_ns: u32,
        // Requests sent to backends by the `call`.
        exchanges: u32,
    }
}

impl<F, E> Future for StatsFuture<F>
where
    F: Future<Output = Result<Reply, E>>,
{
    type Output = Result<Reply, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = match *this.busy_ns {
            NOT_SAMPLED => this.inner.poll(cx),
            busy => {
                let started = Instant::now();
                let outcome = this.inner.poll(cx);
                *this.busy_ns = compact_ns(u64::from(busy) + elapsed_ns(started));
                outcome
            }
        };
        if let Poll::Ready(result) = &outcome {
            cpu::touch(|| this.stats.clone());
            if *this.exchanges > 0 {
                cpu::Account::charge(&**this.stats, cpu::connection_cost() * u64::from(*this.exchanges));
            }
            let error = result.as_ref().map_or(true, Reply::is_error);
            let latency = Duration::from_nanos(clock::now().saturating_sub(*this.started));
            let busy = (*this.busy_ns != NOT_SAMPLED).then(|| Duration::from_nanos(u64::from(*this.busy_ns)));
            this.stats.record(latency, busy, error);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_times_are_kept_in_nanoseconds_below_the_unsampled_mark() {
        assert_eq!(compact_ns(5_000), 5_000);
        assert_eq!(compact_ns(60_000_000_000), NOT_SAMPLED - 1);
        assert_ne!(compact_ns(u64::from(NOT_SAMPLED)), NOT_SAMPLED);
    }
}
