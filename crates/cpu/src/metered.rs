//! [`Metered`]: a task whose polls are timed, one in
//! [`SAMPLE_ONE_IN`](crate::SAMPLE_ONE_IN), on the thread's CPU clock.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::clock::{reading_cost_ns, thread_cpu_ns};
use crate::{ledger, SAMPLE_ONE_IN};

/// What a task does, which says where its time goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// A client session: its polls' time is shared by the requests they
    /// touched ([`crate::touch`]).
    Session,
    /// A backend connection's reader or writer: its time is averaged over
    /// the requests sent ([`crate::connection_cost`]).
    Connection,
}

pin_project_lite::pin_project! {
    /// A future whose polls are timed at random ([`metered`]).
    #[derive(Debug)]
    pub struct Metered<F> {
        #[pin]
        inner: F,
        task: Task,
    }
}

/// `inner`, with one poll in [`SAMPLE_ONE_IN`] timed and its time shared
/// as `task` says.
pub fn metered<F: Future>(inner: F, task: Task) -> Metered<F> {
    Metered { inner, task }
}

/// True for one call in [`SAMPLE_ONE_IN`], at random (a xorshift per thread).
fn picked() -> bool {
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0x9E37_79B9_7F4A_7C15) };
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x % SAMPLE_ONE_IN == 0
    })
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if !picked() {
            return this.inner.poll(cx);
        }
        let outer = (*this.task == Task::Session).then(ledger::begin);
        let started = thread_cpu_ns();
        let outcome = this.inner.poll(cx);
        let spent = thread_cpu_ns()
            .saturating_sub(started)
            .saturating_sub(reading_cost_ns());
        let estimate = spent * SAMPLE_ONE_IN;
        match outer {
            Some(outer) => ledger::end(outer, estimate),
            None => ledger::add_connection_time(estimate),
        }
        outcome
    }
}
