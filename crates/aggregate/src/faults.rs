//! A fault at every request of every command the proxy does in steps
//! that change two slots: each ends complete, with its reply, or as it
//! began, with an error; when the undo fails too (the node stays down),
//! the error says so and nothing the command would have kept is lost.

use std::collections::BTreeMap;

use bytes::Bytes;
use resp::Frame;

use crate::fake_store::{list, set, text, FakeStore, Fault, Value};
use crate::moves;
use crate::steps::args;

/// A command, the keys before it, the keys and reply after it.
struct Case {
    command: &'static [&'static str],
    before: Vec<(&'static str, Value)>,
    after: Vec<(&'static str, Value)>,
    reply: Frame,
}

fn cases() -> Vec<Case> {
    let bulk = |s: &'static str| Frame::Bulk(Bytes::from_static(s.as_bytes()));
    vec![
        Case {
            command: &["SMOVE", "from", "to", "a"],
            before: vec![("from", set(&["a", "b"])), ("to", set(&["c"]))],
            after: vec![("from", set(&["b"])), ("to", set(&["a", "c"]))],
            reply: Frame::Integer(1),
        },
        Case {
            command: &["SMOVE", "from", "to", "a"],
            before: vec![("from", set(&["a"])), ("to", set(&["a"]))],
            after: vec![("to", set(&["a"]))],
            reply: Frame::Integer(1),
        },
        Case {
            command: &["RENAME", "from", "to"],
            before: vec![("from", text("new")), ("to", text("old"))],
            after: vec![("to", text("new"))],
            reply: Frame::simple("OK"),
        },
        Case {
            command: &["RENAMENX", "from", "to"],
            before: vec![("from", list(&["x", "y"]))],
            after: vec![("to", list(&["x", "y"]))],
            reply: Frame::Integer(1),
        },
        Case {
            command: &["LMOVE", "from", "to", "LEFT", "RIGHT"],
            before: vec![("from", list(&["a", "b", "c"])), ("to", list(&["x"]))],
            after: vec![("from", list(&["b", "c"])), ("to", list(&["x", "a"]))],
            reply: bulk("a"),
        },
        // Equal elements on both sides: the length checks tell them apart.
        Case {
            command: &["RPOPLPUSH", "from", "to"],
            before: vec![("from", list(&["b", "a"])), ("to", list(&["a"]))],
            after: vec![("from", list(&["b"])), ("to", list(&["a", "a"]))],
            reply: bulk("a"),
        },
        Case {
            command: &["MSETNX", "n1", "a", "n2", "b", "n3", "c"],
            before: vec![],
            after: vec![("n1", text("a")), ("n2", text("b")), ("n3", text("c"))],
            reply: Frame::Integer(1),
        },
        Case {
            command: &["BLMOVE", "from", "to", "LEFT", "LEFT", "0"],
            before: vec![("from", list(&["a", "b"])), ("to", list(&["a"]))],
            after: vec![("from", list(&["b"])), ("to", list(&["a", "a"]))],
            reply: bulk("a"),
        },
    ]
}

/// Runs `case` against a store failing as `fault` says: its reply (an
/// `Err` shown as an error frame) and the keys afterwards.
async fn run(case: &Case, fault: Option<(usize, Fault)>) -> (Frame, BTreeMap<Bytes, Value>, usize) {
    let store = FakeStore::new(&case.before, fault);
    let mut steps = store.steps();
    let args = args(case.command);
    let name = case.command[0].to_ascii_lowercase();
    let reply = if name.starts_with("bl") {
        moves::blocking_move(&mut steps, &name, &args).await
    } else {
        let reply = moves::run(&mut steps, &name, &args).await.expect("a move");
        reply.map(|r| r.into_frame().expect("a frame"))
    };
    let reply = reply.unwrap_or_else(|error| Frame::error(format!("ERR {error}")));
    (reply, store.keys(), store.calls())
}

fn keys(pairs: &[(&str, Value)]) -> BTreeMap<Bytes, Value> {
    pairs
        .iter()
        .map(|(k, v)| (Bytes::copy_from_slice(k.as_bytes()), v.clone()))
        .collect()
}

/// Every member, element or string value held, with its count.
fn atoms(keys: &BTreeMap<Bytes, Value>) -> BTreeMap<Bytes, usize> {
    let mut atoms = BTreeMap::new();
    for value in keys.values() {
        let items: Vec<&Bytes> = match value {
            Value::Text(v) => vec![v],
            Value::Set(s) => s.iter().collect(),
            Value::List(l) => l.iter().collect(),
        };
        for item in items {
            *atoms.entry(item.clone()).or_insert(0) += 1;
        }
    }
    atoms
}

fn error_text(frame: &Frame) -> Option<String> {
    match frame {
        Frame::Error(text) => Some(String::from_utf8_lossy(text).into_owned()),
        _ => None,
    }
}

/// The one known loss: a blocking pop that ran, whose reply was lost
/// (request 2 of BLMOVE, after the two TYPEs). The proxy never learns
/// the element; a client's own BLPOP loses it the same way.
fn lost_with_the_pop_reply(case: &Case, at: usize, fault: Fault) -> bool {
    case.command[0] == "BLMOVE" && at == 2 && matches!(fault, Fault::LostAfterRun | Fault::NodeDown)
}

#[tokio::test]
async fn a_fault_at_any_step_leaves_the_keys_as_they_were_or_as_asked() {
    let faults = [
        Fault::Refused,
        Fault::NotSent,
        Fault::LostBeforeRun,
        Fault::LostAfterRun,
        Fault::NodeDown,
    ];
    let mut half_done = 0;
    for case in cases() {
        let (before, after) = (keys(&case.before), keys(&case.after));
        let (reply, state, calls) = run(&case, None).await;
        assert_eq!(
            (&reply, &state),
            (&case.reply, &after),
            "{:?} without a fault",
            case.command
        );
        for at in 0..calls {
            for fault in faults {
                let (reply, state) = {
                    let (reply, state, _) = run(&case, Some((at, fault))).await;
                    (reply, state)
                };
                let seen = format!(
                    "{:?} with {fault:?} at request {at}: {reply:?}, {state:?}",
                    case.command
                );
                if lost_with_the_pop_reply(&case, at, fault) {
                    continue;
                }
                if state == after {
                    assert_eq!(reply, case.reply, "{seen}");
                    continue;
                }
                let error = error_text(&reply).unwrap_or_else(|| panic!("no error: {seen}"));
                // A node that stays down may hide whether a step ran.
                let undone = !error.contains("could not be undone");
                if state == before {
                    assert!(undone || fault == Fault::NodeDown, "{seen}");
                    continue;
                }
                // Only a node that stays down stops an undo; then what
                // the command keeps in both outcomes is still there.
                half_done += 1;
                assert_eq!(fault, Fault::NodeDown, "{seen}");
                assert!(!undone, "{seen}");
                let (held, before, after) = (atoms(&state), atoms(&before), atoms(&after));
                for (atom, count) in &before {
                    let kept = (*count).min(after.get(atom).copied().unwrap_or(0));
                    assert!(
                        held.get(atom).copied().unwrap_or(0) >= kept,
                        "{atom:?} lost: {seen}"
                    );
                }
            }
        }
    }
    assert!(half_done > 0, "some node failure stopped an undo");
}
