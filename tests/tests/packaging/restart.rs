//! A restart or upgrade of the agent (`systemctl restart`, a package
//! upgrade: SIGTERM) while it runs a deploy: the stage's processes are
//! stopped, and the deployment fails as interrupted by the agent's
//! restart once the agent is back, never `canceled` (which means a user
//! canceled it).

use berth_tests::{Agent, Controller, DEADLINE, write_bundle};

#[test]
fn an_agent_restart_mid_deploy_is_an_interruption_not_a_cancel() {
    let controller = Controller::start();
    let mut agent = Agent::join(&controller, "restarted", "");
    let manifest = "app = \"slow\"\n[target]\nhosts = [\"restarted\"]\n[setup]\nrun = [\"echo working; sleep 30\"]\n";
    let bundle = write_bundle(controller.dir.path(), "slow", manifest, &[]);
    let mut deploy =
        controller.berth_spawn(&["deploy", "--bundle", bundle.to_str().expect("path")]);
    assert!(
        deploy.stdout.wait_for("working", DEADLINE).is_some(),
        "the setup did not start:\n{}",
        deploy.log_tail()
    );

    // SIGTERM, as systemd stops the unit; the agent stops its tasks and exits.
    agent.process().terminate();
    assert!(
        agent.process_mut().wait_exit(DEADLINE).is_some(),
        "the agent did not stop on SIGTERM"
    );
    agent.spawn();
    agent.process().expect_connected("the restarted agent");

    let code = deploy.wait_exit(DEADLINE);
    let said = format!(
        "{}\n{}",
        deploy.stdout.all().join("\n"),
        deploy.stderr.all().join("\n")
    );
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("is failed"), "{said}");
    assert!(
        said.contains("restarted while this task was running"),
        "{said}"
    );
    assert!(
        !said.contains("canceled"),
        "a restart reported as a cancel:\n{said}"
    );
}
