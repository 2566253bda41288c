use super::*;

#[test]
fn conflicts_are_injected_with_the_probability() {
    let faults = Faults::new(Arc::new(Registry::default()), Stats::new());
    faults.inject_commit_conflicts(0.5);
    let conflicts = (0..1000).filter(|_| faults.roll_conflict()).count();
    assert!((350..650).contains(&conflicts), "{conflicts}");
    faults.inject_commit_conflicts(f64::NAN);
    assert!(!faults.roll_conflict());
}

#[test]
fn knobs_set_and_clear() {
    let faults = Faults::new(Arc::new(Registry::default()), Stats::new());
    assert!(!faults.roll_conflict());
    faults.inject_commit_conflicts(1.0);
    assert!(faults.roll_conflict());
    faults.set_latency(Latency::PerQuery(Duration::from_millis(5)));
    assert_eq!(faults.latency_for(b'Q'), Some(Duration::from_millis(5)));
    assert_eq!(faults.latency_for(b'P'), None);
    faults.drop_at_next_commit(CommitDrop::AfterForwarding);
    assert_eq!(faults.take_commit_drop(), Some(CommitDrop::AfterForwarding));
    assert_eq!(faults.take_commit_drop(), None);
    faults.pause_accepting();
    assert!(faults.is_paused());
    faults.refuse_auth_for(Duration::from_secs(60));
    assert!(faults.refusing_auth());
    faults.clear();
    assert!(!faults.is_paused() && !faults.refusing_auth() && !faults.roll_conflict());
    assert_eq!(faults.latency_for(b'Q'), None);
}

#[test]
fn count_based_knobs_fire_once_at_their_count() {
    let faults = Faults::new(Arc::new(Registry::default()), Stats::new());
    assert_eq!(faults.take_statement_fault(), None);
    faults.fail_statement(2);
    faults.drop_at_statement(3, StatementDrop::AfterCompletion);
    assert_eq!(faults.take_statement_fault(), None);
    assert_eq!(faults.take_statement_fault(), Some(StatementFault::Fail));
    assert_eq!(
        faults.take_statement_fault(),
        Some(StatementFault::Drop(StatementDrop::AfterCompletion))
    );
    assert_eq!(faults.take_statement_fault(), None);

    // Both at the same statement: the drop wins.
    faults.fail_statement(1);
    faults.drop_at_statement(1, StatementDrop::BeforeForwarding);
    assert_eq!(
        faults.take_statement_fault(),
        Some(StatementFault::Drop(StatementDrop::BeforeForwarding))
    );
    assert_eq!(faults.take_statement_fault(), None);

    faults.refuse_next_auths(2);
    faults.throttle_next_connects(1);
    assert!(faults.take_auth_refusal() && faults.take_auth_refusal());
    assert!(!faults.take_auth_refusal());
    assert!(faults.take_throttle());
    assert!(!faults.take_throttle());

    faults.fail_statement(1);
    faults.refuse_next_auths(1);
    faults.throttle_next_connects(1);
    faults.clear();
    assert_eq!(faults.take_statement_fault(), None);
    assert!(!faults.take_auth_refusal() && !faults.take_throttle());
}

#[test]
fn isolation_is_set_replaced_and_healed() {
    let stats = Stats::new();
    let faults = Faults::new(Arc::new(Registry::default()), stats.clone());
    assert_eq!(faults.isolation(), None);
    assert!(!faults.commits_fail());
    assert_eq!(faults.isolate(), 0, "no session to cut");
    assert_eq!(faults.isolation(), Some(Isolation::DEFAULT));
    assert!(faults.commits_fail());
    let keep = Isolation {
        connects: IsolatedConnects::Hang,
        open_sessions: IsolatedSessions::Keep,
        commits: IsolatedCommits::Succeed,
    };
    faults.isolate_with(keep);
    assert_eq!(faults.isolation(), Some(keep));
    assert!(!faults.commits_fail());
    faults.heal();
    assert_eq!(faults.isolation(), None);
    faults.isolate();
    faults.clear();
    assert_eq!(faults.isolation(), None, "clear heals");
    assert_eq!(stats.snapshot().sessions_cut_by_isolation, 0);
}
