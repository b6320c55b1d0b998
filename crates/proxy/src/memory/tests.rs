//! The budgets' decisions, with the resident memory as the tests say.

use super::*;

fn clients_only(clients: usize) -> Budget {
    Budget { clients, resident: 0 }
}

fn resident_only(resident: usize) -> Budget {
    Budget { clients: 0, resident }
}

fn unread() -> Option<usize> {
    panic!("the resident memory was read")
}

fn client(clients: &Clients, port: u16) -> std::sync::Arc<ClientInfo> {
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    clients.add(addr, addr)
}

#[test]
fn the_client_holding_the_most_is_evicted_once() {
    let clients = Clients::default();
    let memory = ClientMemory::default();
    let (small, big) = (client(&clients, 1), client(&clients, 2));
    let (mut small_held, mut big_held) = (Held::default(), Held::default());
    assert!(small_held.report(&small, &memory, 0, 0, 100));
    assert!(big_held.report(&big, &memory, 50, 64, 900));
    assert_eq!(memory.held(), 1050);
    assert_eq!(memory.evict_over(clients_only(2000), &clients), None);
    assert_eq!(memory.evict_over(clients_only(1000), &clients), Some(big.id));
    assert!(big.kill.is_cancelled());
    // Its bytes are on their way out: nobody else goes for them.
    assert_eq!(memory.evict_over(clients_only(1000), &clients), None);
    assert!(!small.kill.is_cancelled());
    big_held.release(&memory);
    assert_eq!(memory.held(), 100);
    assert_eq!(memory.evicted(), 1);
    assert_eq!(
        memory.evict_over(Budget::default(), &clients),
        None,
        "0 is no limit"
    );
}

#[test]
fn replies_nobody_took_yet_evict_nobody_until_they_are_someones() {
    let clients = Clients::default();
    let memory = ClientMemory::default();
    let (reader, hog) = (client(&clients, 1), client(&clients, 2));
    let (mut reader_held, mut hog_held) = (Held::default(), Held::default());
    assert!(reader_held.report(&reader, &memory, 0, 16384, 10));
    assert_eq!(
        memory.evict_with(clients_only(1000), &clients, 5000, unread),
        None
    );
    assert!(!reader.kill.is_cancelled());
    // The hog's session took them: it goes.
    assert!(hog_held.report(&hog, &memory, 0, 0, 5000));
    assert_eq!(
        memory.evict_with(clients_only(1000), &clients, 0, unread),
        Some(hog.id)
    );
}

#[test]
fn reports_only_changes() {
    let clients = Clients::default();
    let memory = ClientMemory::default();
    let info = client(&clients, 1);
    let mut held = Held::default();
    assert!(!held.report(&info, &memory, 0, 16384, 0));
    assert!(held.report(&info, &memory, 0, 16384, 10));
    assert!(!held.report(&info, &memory, 0, 16384, 4));
    assert_eq!(memory.held(), 4);
    assert_eq!(info.buffers.held(), 4);
}

#[test]
fn near_maxmemory_the_client_holding_the_most_is_evicted() {
    let clients = Clients::default();
    let memory = ClientMemory::default();
    let (small, big) = (client(&clients, 1), client(&clients, 2));
    let (mut small_held, mut big_held) = (Held::default(), Held::default());
    assert!(small_held.report(&small, &memory, 0, 0, 100));
    // Clients holding under a quarter of the budget: the resident
    // memory is not even read.
    assert_eq!(memory.evict_with(resident_only(1600), &clients, 0, unread), None);
    assert!(big_held.report(&big, &memory, 0, 0, 400));
    // Under three quarters of the budget: nobody goes.
    let budget = resident_only(1600);
    assert_eq!(memory.evict_with(budget, &clients, 0, || Some(1200)), None);
    assert_eq!(
        memory.evict_with(budget, &clients, 0, || Some(1201)),
        Some(big.id)
    );
    assert!(big.kill.is_cancelled() && big.buffers.evicted());
    big_held.release(&memory);
    clients.remove(big.id);
    // Its memory has not left the process yet: nobody else goes for it
    // until the memory comes close to the budget.
    assert!(small_held.report(&small, &memory, 0, 0, 450));
    assert_eq!(memory.evict_with(budget, &clients, 0, || Some(1300)), None);
    assert!(!small.kill.is_cancelled());
    assert_eq!(
        memory.evict_with(budget, &clients, 0, || Some(1401)),
        Some(small.id)
    );
    assert_eq!(memory.evicted(), 2);
}

#[test]
fn once_an_evicted_clients_memory_left_the_next_goes_near_the_budget() {
    let clients = Clients::default();
    let memory = ClientMemory::default();
    let (first, second) = (client(&clients, 1), client(&clients, 2));
    let (mut first_held, mut second_held) = (Held::default(), Held::default());
    assert!(first_held.report(&first, &memory, 0, 0, 500));
    assert!(second_held.report(&second, &memory, 0, 0, 450));
    let budget = resident_only(1600);
    assert_eq!(
        memory.evict_with(budget, &clients, 0, || Some(1300)),
        Some(first.id)
    );
    first_held.release(&memory);
    clients.remove(first.id);
    assert_eq!(memory.evict_with(budget, &clients, 0, || Some(1250)), None);
    // Down by half of what it held: gone.
    assert_eq!(memory.evict_with(budget, &clients, 0, || Some(1050)), None);
    assert_eq!(
        memory.evict_with(budget, &clients, 0, || Some(1250)),
        Some(second.id)
    );
}

#[test]
fn memory_that_is_the_proxys_own_evicts_nobody() {
    let clients = Clients::default();
    let memory = ClientMemory::default();
    let info = client(&clients, 1);
    let mut held = Held::default();
    assert!(held.report(&info, &memory, 0, 0, 100));
    assert_eq!(
        memory.evict_with(resident_only(1000), &clients, 0, || Some(5000)),
        None
    );
    assert!(!info.kill.is_cancelled());
    assert!(resident_bytes().is_some_and(|bytes| bytes > 0));
}
