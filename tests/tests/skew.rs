//! T9, clock skew: agents whose wall clock is off (libfaketime, see
//! `berth_tests::clock`) are told so by name. Certificates are backdated 5
//! minutes, so an agent 10 minutes behind cannot verify a controller
//! initialized a moment ago (and says it is the clock, sending no token),
//! but joins one initialized an hour ago; an agent hours ahead joins, and
//! its renewal is refused naming the skew. Both log the skew they see.

use berth_tests::clock::skewed;
use berth_tests::{Agent, Controller};

/// Waits for a line of the agent's log containing `needle` and every one
/// of `parts`; returns it.
fn expect_logged(agent: &Agent, needle: &str, parts: &[&str]) -> String {
    let line = agent.process().expect_logged(needle, 1, &agent.name);
    for part in parts {
        assert!(line.contains(part), "{part:?} missing from: {line}");
    }
    line
}

/// Whether `line` says two hours (less the time a message takes, as the
/// two clocks are read at either end of it: "1h 59m 59s").
fn says_two_hours(line: &str, before: &str) -> bool {
    ["2h", "1h 59m"]
        .iter()
        .any(|span| line.contains(&format!("{before}{span}")))
}

#[test]
fn an_agent_behind_a_new_controller_is_told_its_clock_is_behind() {
    let test = "skew::an_agent_behind_a_new_controller_is_told_its_clock_is_behind";
    let Some(behind) = skewed(test, "-10m") else {
        return;
    };
    let controller = Controller::start();
    let token = controller.token(&[]);
    let refused = Agent::join_with_env(&controller, "laggard", "", &token, &behind)
        .err()
        .expect("the controller's certificate is not valid yet by the agent's clock");
    for part in [
        "this host's clock is behind (clock skew)",
        "NTP",
        "the token was NOT sent",
    ] {
        assert!(refused.stderr.contains(part), "{}", refused.stderr);
    }
    assert!(
        !refused.stderr.contains("check the address"),
        "the clock is named, not the address: {}",
        refused.stderr
    );
    // The token was not spent: the same host with its clock set joins.
    Agent::join_with(&controller, "laggard", "", &token).expect("join with the clock set");
}

#[test]
fn an_agent_behind_an_older_controller_joins_and_logs_its_skew() {
    let test = "skew::an_agent_behind_an_older_controller_joins_and_logs_its_skew";
    let (Some(an_hour_ago), Some(behind)) = (skewed(test, "-1h"), skewed(test, "-10m")) else {
        return;
    };
    // Certificates made an hour ago, as for a controller running a while.
    let controller = Controller::start_with_init_env(&an_hour_ago, &[]);
    let token = controller.token(&[]);
    let agent = Agent::join_with_env(&controller, "laggard", "role=web", &token, &behind)
        .unwrap_or_else(|failed| panic!("join 10 minutes behind: {}", failed.stderr))
        .start();
    expect_logged(
        &agent,
        "the controller's",
        &["behind the controller's", "NTP", "skew_ms=-"],
    );
    controller.deploy_ok(
        "late",
        "app = \"late\"\n[target]\nhosts = [\"laggard\"]\n[setup]\nrun = [\"echo on time\"]\n",
    );
}

#[test]
fn an_agent_hours_ahead_is_told_its_skew_by_name() {
    let test = "skew::an_agent_hours_ahead_is_told_its_skew_by_name";
    let Some(ahead) = skewed(test, "+2h") else {
        return;
    };
    // Renewal is due after two thirds of 6 s.
    let controller = Controller::start_with(&["--agent-cert-lifetime", "6s"]);
    let token = controller.token(&[]);
    let agent = Agent::join_with_env(&controller, "hasty", "", &token, &ahead)
        .unwrap_or_else(|failed| panic!("join 2 hours ahead: {}", failed.stderr))
        .start();
    let seen = expect_logged(&agent, "the controller's", &["ahead of the controller's"]);
    assert!(says_two_hours(&seen, "this host's clock is "), "{seen}");
    let refused = expect_logged(&agent, "refused to renew", &["ahead of the controller's"]);
    assert!(
        says_two_hours(&refused, "the clock of agent `hasty` is "),
        "{refused}"
    );
}
