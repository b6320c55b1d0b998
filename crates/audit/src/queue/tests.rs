//! The queue's policies, one lane or several.

use super::*;

fn seqs(lines: &[Vec<u8>]) -> Vec<String> {
    lines
        .iter()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_slice(line).unwrap();
            match value.get("seq") {
                Some(seq) => seq.to_string(),
                None => format!(
                    "gap {}-{} ({})",
                    value["from_seq"], value["to_seq"], value["dropped"]
                ),
            }
        })
        .collect()
}

#[test]
fn a_full_lane_under_drop_writes_a_gap_that_accounts_for_every_number() {
    let queue = Queue::new(1, 2, OnFull::Drop);
    for _ in 0..5 {
        // Nothing is promised under `drop`, whatever the caller says.
        assert!(queue.reserve());
        queue.push(br#"{"event":"command"}"#, "n", true);
    }
    assert_eq!(seqs(&queue.take(0, Duration::ZERO).unwrap()), ["1", "2"]);
    queue.push(b"{}", "n", false);
    assert_eq!(
        seqs(&queue.take(0, Duration::ZERO).unwrap()),
        ["gap 3-5 (3)", "6"]
    );
    assert_eq!(queue.status().sinks[0].dropped, 3);
}

#[test]
fn under_fail_a_request_without_room_is_refused_and_a_promise_holds_a_place() {
    let queue = Queue::new(2, 2, OnFull::Fail);
    assert!(queue.reserve());
    queue.push(b"{}", "n", false);
    // One record and one promise: no room for another promise.
    assert!(!queue.reserve());
    assert_eq!(queue.status().failed, 1);
    // The promised record still gets its place.
    queue.push(b"{}", "n", true);
    assert_eq!(queue.status().sinks[1].queued, 2);
    assert_eq!(queue.take(1, Duration::ZERO).unwrap().len(), 2);
    // A lane taken by its writer makes room again only when both are.
    assert!(!queue.reserve());
    queue.take(0, Duration::ZERO);
    assert!(queue.reserve());
    queue.release(1);
    assert_eq!(queue.status().reserved, 0);
}

#[test]
fn under_block_a_full_queue_holds_the_clients_until_the_writer_takes() {
    let queue = Queue::new(1, 2, OnFull::Block);
    queue.push(b"{}", "n", false);
    assert!(!queue.holds_clients());
    // A request read before the queue filled still gets its place.
    assert!(queue.reserve());
    assert!(queue.holds_clients());
    assert!(queue.reserve());
    queue.push(b"{}", "n", true);
    queue.push(b"{}", "n", true);
    assert_eq!(queue.status().sinks[0].queued, 3);
    assert!(queue.holds_clients());
    assert_eq!(queue.take(0, Duration::ZERO).unwrap().len(), 3);
    assert!(!queue.holds_clients());
    assert_eq!(queue.status().sinks[0].dropped, 0);
}
