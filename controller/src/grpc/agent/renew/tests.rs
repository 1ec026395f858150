//! Tests of the renewal rules: when a renewal is due, clock skew, the two
//! newest serials, the hourly limit and how many serials stay valid.

use super::*;
use berth_shared::id::AgentId;
use berth_shared::labels::Labels;

const MINUTE: i64 = 60 * 1000;

fn record(serials: &[&str]) -> AgentRecord {
    AgentRecord {
        id: AgentId::new(),
        name: "web-1".into(),
        labels: Labels::new(),
        auto_labels: Labels::new(),
        status: "active".into(),
        enrolled_at: Timestamp(0),
        revoked_at: None,
        version: None,
        facts: None,
        last_seen_at: None,
        offline_since: None,
        serials: serials.iter().map(|serial| serial.to_string()).collect(),
        cert_not_after: Timestamp(0),
        renewed_at: Vec::new(),
    }
}

/// A 30-minute certificate `serial` issued at 0, asked about at `now_ms`.
fn ask(serial: &str, now_ms: i64) -> Ask {
    Ask {
        serial: serial.into(),
        not_before_ms: 0,
        not_after_ms: 30 * MINUTE,
        now_ms,
        agent_now_ms: now_ms,
    }
}

fn check_refused(record: &AgentRecord, ask: &Ask, expected: &str) {
    let refusal = check(record, ask).expect_err("refused");
    assert!(refusal.reason.contains(expected), "{}", refusal.reason);
    assert!(refusal.retry_after_secs >= 1);
}

#[test]
fn a_renewal_is_due_after_two_thirds_of_the_lifetime_by_the_controllers_clock() {
    let agent = record(&["a"]);
    check_refused(&agent, &ask("a", 19 * MINUTE), "not due until");
    assert_eq!(
        check(&agent, &ask("a", 19 * MINUTE))
            .expect_err("early")
            .retry_after_secs,
        60
    );
    assert_eq!(check(&agent, &ask("a", 20 * MINUTE)), Ok(()));
}

#[test]
fn an_agent_clock_far_off_is_refused_naming_the_skew() {
    let agent = record(&["a"]);
    let mut ahead = ask("a", 25 * MINUTE);
    ahead.agent_now_ms += 2 * 24 * 60 * MINUTE;
    check_refused(&agent, &ahead, "2days ahead of the controller's");
    let mut behind = ask("a", 25 * MINUTE);
    behind.agent_now_ms -= 6 * MINUTE;
    check_refused(&agent, &behind, "6m behind");
    let mut close = ask("a", 25 * MINUTE);
    close.agent_now_ms += 4 * MINUTE;
    assert_eq!(check(&agent, &close), Ok(()));
}

#[test]
fn only_the_two_newest_serials_may_renew() {
    let agent = record(&["a", "b", "c"]);
    check_refused(&agent, &ask("a", 25 * MINUTE), "already replaced");
    assert_eq!(check(&agent, &ask("b", 25 * MINUTE)), Ok(()));
    assert_eq!(check(&agent, &ask("c", 25 * MINUTE)), Ok(()));
}

#[test]
fn renewals_are_limited_per_hour() {
    let mut agent = record(&["s0"]);
    let mut now = 25 * MINUTE;
    for round in 0..MAX_RENEWALS_PER_HOUR {
        let current = format!("s{round}");
        let request = ask(&current, now);
        assert_eq!(check(&agent, &request), Ok(()), "renewal {round}");
        apply(&mut agent, &request, &format!("s{}", round + 1), 0);
        now += MINUTE;
    }
    let newest = format!("s{MAX_RENEWALS_PER_HOUR}");
    check_refused(&agent, &ask(&newest, now), "times in the last hour");
    assert_eq!(
        check(&agent, &ask(&newest, 25 * MINUTE + 60 * MINUTE)),
        Ok(())
    );
}

#[test]
fn a_renewal_keeps_at_most_two_serials() {
    // Renewing from the newest keeps the caller and the new one.
    let mut agent = record(&["a"]);
    assert!(apply(&mut agent, &ask("a", 25 * MINUTE), "b", 0).is_empty());
    assert_eq!(agent.serials, ["a", "b"]);
    // Renewing again from the older one drops the unused newer one.
    assert_eq!(apply(&mut agent, &ask("a", 25 * MINUTE), "c", 0), ["b"]);
    assert_eq!(agent.serials, ["a", "c"]);
    // A list from before the limit shrinks to two.
    let mut legacy = record(&["1", "2", "3", "4"]);
    assert_eq!(
        apply(&mut legacy, &ask("4", 25 * MINUTE), "5", 0),
        ["1", "2", "3"]
    );
    assert_eq!(legacy.serials, ["4", "5"]);
}
