//! Undo for the commands the proxy carries out as steps that change keys
//! in two slots (RENAME, SMOVE, LMOVE, MSETNX and BLMOVE across slots).
//!
//! Each of them copies before it removes, so at every instant the data is
//! in at least one place. When a step fails (a node dies or stops
//! answering between two steps, or refuses one), the steps already done,
//! and the failed one if it may have run, are undone newest first, and
//! the client gets an error saying nothing changed. Every undo is correct
//! whether or not its step ran: most are idempotent (SREM of a member the
//! destination did not hold, RESTORE ... REPLACE of the old value, DEL of
//! keys that did not exist); list pushes and removals are not, so their
//! undo first checks the list's length when the step's outcome is
//! unknown. Should an undo fail as well (the node is down), the command
//! may leave the data in both places, never in neither: an undo that
//! takes a copy back may be skipped (a copy too many), but one that puts
//! removed data back may not, so undoing stops there, before any copy of
//! that data is taken back. The error then says so.

use bytes::Bytes;
use resp::Frame;
use router::{Command, Error, Reply};
use tower::Service;

use crate::steps::{arg, Steps};

/// How to take one step back.
#[derive(Clone, Debug)]
pub(crate) enum Undo {
    /// A command that takes a copy back (or puts the value it replaced
    /// back), correct whether or not the step ran.
    Uncopy(Vec<Bytes>),
    /// A command that puts removed data back, correct whether or not the
    /// step ran.
    Recreate(Vec<Bytes>),
    /// `element` was pushed at one end of `key`: one occurrence is
    /// removed from that end. With `length` (what the list held before),
    /// only if the list is one longer: the push may not have run.
    Unpush {
        key: Bytes,
        element: Bytes,
        left: bool,
        length: Option<i64>,
    },
    /// `element` was removed near one end of `key`: it is pushed back
    /// there. With `length`, only if the list is one shorter.
    Repush {
        key: Bytes,
        element: Bytes,
        left: bool,
        length: Option<i64>,
    },
}

/// What a step that changes data came to.
enum Failure {
    /// The server answered with an error: the step did not run, and the
    /// error is the client's answer.
    Refused(Frame),
    /// The request failed on its way.
    Broken(Error),
}

/// The steps one command has done so far, to undo them if a later one
/// fails.
#[derive(Debug)]
pub(crate) struct Journal {
    /// The command, upper case, for error texts.
    command: &'static str,
    /// Where the data is when undoing fails half way, for error texts.
    left_behind: &'static str,
    done: Vec<Undo>,
}

impl Journal {
    /// An empty journal for `command`; `left_behind` says where the data
    /// is should an undo fail ("the member may be in both sets; nothing
    /// was lost").
    pub(crate) fn new(command: &'static str, left_behind: &'static str) -> Journal {
        Journal {
            command,
            left_behind,
            done: Vec::new(),
        }
    }

    /// Sends a step that changes data and, when it ran, records `undo`.
    /// `Err` holds the client's answer when it failed: everything is
    /// undone by then, as far as it could be.
    pub(crate) async fn change<S>(
        &mut self,
        steps: &mut Steps<S>,
        args: Vec<Bytes>,
        undo: Undo,
    ) -> Result<Frame, Frame>
    where
        S: Service<Command, Response = Reply, Error = Error>,
    {
        let failure = match steps.call(args).await {
            Ok(frame) if !frame.is_error() => {
                self.done.push(undo.ran());
                return Ok(frame);
            }
            Ok(refused) => Failure::Refused(refused),
            Err(error) => Failure::Broken(error),
        };
        let may_have_run = match &failure {
            Failure::Refused(_) => false,
            Failure::Broken(error) => !error.never_ran(),
        };
        // These are safe even if the step did not run (a command split
        // across nodes may have run on some of them).
        let failed_step = match undo {
            Undo::Uncopy(_) | Undo::Recreate(_) => Some(undo),
            _ if may_have_run => Some(undo),
            _ => None,
        };
        self.done.extend(failed_step);
        Err(self.undo_all(steps, failure).await)
    }

    /// Pushes `element` at one end of the list `key`, which held `length`
    /// elements: a step of a list move, undone as [`Journal::change`]
    /// says.
    pub(crate) async fn push<S>(
        &mut self,
        steps: &mut Steps<S>,
        key: &Bytes,
        element: &Bytes,
        left: bool,
        length: i64,
    ) -> Result<Frame, Frame>
    where
        S: Service<Command, Response = Reply, Error = Error>,
    {
        let push = vec![
            arg(if left { "LPUSH" } else { "RPUSH" }),
            key.clone(),
            element.clone(),
        ];
        let unpush = Undo::Unpush {
            key: key.clone(),
            element: element.clone(),
            left,
            length: Some(length),
        };
        self.change(steps, push, unpush).await
    }

    /// Records a step done outside the journal (a blocking pop).
    pub(crate) fn ran(&mut self, undo: Undo) {
        self.done.push(undo.ran());
    }

    /// Undoes every step done because a read between steps failed
    /// (`Err`) or answered an error (`Ok`), and gives the client's answer.
    pub(crate) async fn abandon<S>(mut self, steps: &mut Steps<S>, read: Result<Frame, Error>) -> Frame
    where
        S: Service<Command, Response = Reply, Error = Error>,
    {
        let failure = match read {
            Ok(frame) => Failure::Refused(frame),
            Err(error) => Failure::Broken(error),
        };
        self.undo_all(steps, failure).await
    }

    /// Undoes every step done, for a command that changes its mind (a
    /// member that vanished meanwhile). `Err` holds the client's answer
    /// when an undo failed.
    pub(crate) async fn roll_back<S>(mut self, steps: &mut Steps<S>) -> Result<(), Frame>
    where
        S: Service<Command, Response = Reply, Error = Error>,
    {
        match self.undo_steps(steps).await {
            Ok(()) => Ok(()),
            Err(error) => Err(Frame::error(format!(
                "ERR proxy: {} could not be undone ({error}): {}",
                self.command, self.left_behind
            ))),
        }
    }

    async fn undo_all<S>(&mut self, steps: &mut Steps<S>, failure: Failure) -> Frame
    where
        S: Service<Command, Response = Reply, Error = Error>,
    {
        let command = self.command;
        if let Err(error) = self.undo_steps(steps).await {
            let why = match &failure {
                Failure::Refused(frame) => error_text(frame),
                Failure::Broken(error) => error.to_string(),
            };
            return Frame::error(format!(
                "ERR proxy: {command} failed ({why}) and could not be undone ({error}): {}",
                self.left_behind
            ));
        }
        match failure {
            Failure::Refused(frame) => frame,
            Failure::Broken(error) => Frame::error(format!(
                "ERR proxy: {command} failed and was undone, nothing changed: {error}"
            )),
        }
    }

    /// Runs the undos newest first. One that takes a copy back may fail
    /// and the rest go on; one that puts data back may not: undoing stops
    /// there. `Err` is the first failure.
    async fn undo_steps<S>(&mut self, steps: &mut Steps<S>) -> Result<(), String>
    where
        S: Service<Command, Response = Reply, Error = Error>,
    {
        let mut first_failure = None;
        while let Some(undo) = self.done.pop() {
            let puts_back = undo.puts_back();
            if let Err(error) = undo.apply(steps).await {
                first_failure.get_or_insert(error);
                if puts_back {
                    break;
                }
            }
        }
        first_failure.map_or(Ok(()), Err)
    }
}

impl Undo {
    /// The undo of a step known to have run: no length to check.
    fn ran(mut self) -> Undo {
        if let Undo::Unpush { length, .. } | Undo::Repush { length, .. } = &mut self {
            *length = None;
        }
        self
    }

    /// True for an undo that puts removed data back: skipping it could
    /// lose data.
    fn puts_back(&self) -> bool {
        matches!(self, Undo::Recreate(_) | Undo::Repush { .. })
    }

    /// Takes the step back. `Err` says why it could not be.
    async fn apply<S>(self, steps: &mut Steps<S>) -> Result<(), String>
    where
        S: Service<Command, Response = Reply, Error = Error>,
    {
        let command = match self {
            Undo::Uncopy(command) | Undo::Recreate(command) => command,
            Undo::Unpush {
                key,
                element,
                left,
                length,
            } => {
                if !list_changed_by(steps, &key, length, 1).await? {
                    return Ok(());
                }
                vec![arg("LREM"), key, arg(if left { "1" } else { "-1" }), element]
            }
            Undo::Repush {
                key,
                element,
                left,
                length,
            } => {
                if !list_changed_by(steps, &key, length, -1).await? {
                    return Ok(());
                }
                vec![arg(if left { "LPUSH" } else { "RPUSH" }), key, element]
            }
        };
        checked(steps.call(command).await).map(drop)
    }
}

/// Whether the list at `key`, which held `length` elements before a step
/// of unknown outcome, now holds `change` more (the step ran) or as many
/// (it did not). `length` `None`: the step is known to have run.
async fn list_changed_by<S>(
    steps: &mut Steps<S>,
    key: &Bytes,
    length: Option<i64>,
    change: i64,
) -> Result<bool, String>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    let Some(before) = length else {
        return Ok(true);
    };
    let now = checked(steps.call(vec![arg("LLEN"), key.clone()]).await)?.as_integer();
    match now {
        Some(now) if now == before + change => Ok(true),
        Some(now) if now == before => Ok(false),
        _ => Err(format!(
            "the list {} changed meanwhile",
            String::from_utf8_lossy(key)
        )),
    }
}

/// A reply that is not an error, or the error's text.
fn checked(reply: Result<Frame, Error>) -> Result<Frame, String> {
    match reply {
        Ok(frame) if frame.is_error() => Err(error_text(&frame)),
        Ok(frame) => Ok(frame),
        Err(error) => Err(error.to_string()),
    }
}

fn error_text(frame: &Frame) -> String {
    match frame {
        Frame::Error(text) => String::from_utf8_lossy(text).into_owned(),
        other => format!("{other:?}"),
    }
}
