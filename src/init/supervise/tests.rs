use super::*;

fn sup(names: &[&str]) -> Supervisor {
    Supervisor::new(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

fn restart_in(e: &Exit) -> Option<u64> {
    match e {
        Exit::Service { restart_in, .. } => *restart_in,
        Exit::Orphan => panic!("expected a service exit"),
    }
}

#[test]
fn everything_starts_at_boot_in_order() {
    let s = sup(&["agent", "console"]);
    assert_eq!(s.due(0), vec![0, 1]);
    assert_eq!(s.next_due(), Some(0));
}

#[test]
fn a_crash_loop_backs_off_exponentially_up_to_the_cap() {
    let mut s = sup(&["agent"]);
    let mut now = 0;
    let mut delays = Vec::new();
    for pid in 100..110 {
        assert_eq!(s.due(now), vec![0], "due at {now}");
        s.started(0, pid, now);
        assert!(s.due(now).is_empty());
        now += 50; // crashes 50 ms after start
        let e = s.exited(pid, now);
        let d = restart_in(&e).unwrap();
        delays.push(d);
        assert!(s.due(now + d - 1).is_empty(), "not before its delay");
        now += d;
    }
    assert_eq!(
        delays,
        vec![1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000]
    );
    assert_eq!(s.services[0].restarts, 10);
}

#[test]
fn a_service_that_ran_a_while_restarts_quickly_again() {
    let mut s = sup(&["agent"]);
    s.started(0, 10, 0);
    let e = s.exited(10, 100);
    assert_eq!(restart_in(&e), Some(1_000));
    s.started(0, 11, 1_100);
    assert_eq!(restart_in(&s.exited(11, 1_200)), Some(2_000));
    s.started(0, 12, 3_200);
    // Up for more than HEALTHY_AFTER_MS: back to the first delay.
    assert_eq!(
        restart_in(&s.exited(12, 3_200 + HEALTHY_AFTER_MS)),
        Some(FIRST_BACKOFF_MS)
    );
}

#[test]
fn unknown_pids_are_orphans() {
    let mut s = sup(&["agent"]);
    s.started(0, 10, 0);
    assert_eq!(s.exited(4242, 5), Exit::Orphan);
    assert_eq!(s.running(), 1);
}

#[test]
fn a_failed_exec_is_retried_with_backoff() {
    let mut s = sup(&["agent"]);
    assert_eq!(restart_in(&s.start_failed(0, 0).unwrap()), Some(1_000));
    assert_eq!(s.next_due(), Some(1_000));
}

#[test]
fn shutdown_stops_in_reverse_order_and_nothing_restarts() {
    let mut s = sup(&["agent", "dhcp", "console"]);
    s.started(0, 10, 0);
    s.started(1, 11, 0);
    // `console` is waiting for a restart when the shutdown comes.
    s.started(2, 12, 0);
    s.exited(12, 10);
    let order = s.shutdown();
    assert_eq!(
        order,
        vec![("dhcp".to_string(), 11), ("agent".to_string(), 10)]
    );
    assert!(s.due(u64::MAX).is_empty(), "nothing starts during shutdown");
    assert_eq!(restart_in(&s.exited(11, 20)), None);
    assert_eq!(restart_in(&s.exited(10, 30)), None);
    assert_eq!(s.running(), 0);
    assert_eq!(s.next_due(), None);
}
