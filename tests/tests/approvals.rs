//! Approvals in a protected environment through the real binaries: an
//! operator's deploy waits in `pending_approval` and runs nothing on its
//! host; the operator may not approve it; another operator (with two
//! approvals) does, and it deploys naming its approver; an operator's stop
//! waits and runs once approved; the HTTP API's approve route takes a
//! token and refuses a viewer and the requester; a held stop is withdrawn
//! with `berth cancel`. With a short
//! `--approval-ttl`, a deploy and a stop nobody approves expire, across a
//! controller restart: the deployment `canceled` with the reason, the
//! stop dropped with its deployment still deployed; an admin's deploy
//! goes through at once, and an operator may not approve where one
//! approval (an admin's) is needed.

use std::path::Path;
use std::time::Duration;

use berth_tests::http::{Api, user_token};
use berth_tests::{Agent, Cli, Controller, eventually_or, id_of, write_bundle};
use serde_json::{Value, json};

/// Exit code of a change that waits for an approval (`exit::PENDING_APPROVAL`).
const PENDING: i32 = 6;

/// `shop` in the protected `prod`: its setup appends its version to
/// `dir/runs`, its `[stop]` touches `dir/stopped`.
fn manifest(version: &str, dir: &Path) -> String {
    let dir = dir.display();
    format!(
        r#"app = "shop"
environment = "prod"
version = "{version}"
[target]
hosts = ["h1"]
[setup]
run = ["echo {version} >> {dir}/runs"]
[stop]
run = ["touch {dir}/stopped"]
"#
    )
}

/// Deploys `version` as the holder of `bundle` (the admin when `None`).
fn deploy(controller: &Controller, who: Option<&Path>, version: &str, dir: &Path) -> Cli {
    let bundle = write_bundle(
        controller.dir.path(),
        &format!("shop-{version}"),
        &manifest(version, dir),
        &[],
    );
    let args = [
        "deploy",
        "--bundle",
        bundle.to_str().expect("path"),
        "-o",
        "json",
    ];
    match who {
        Some(credential) => controller.berth_with(credential, &args),
        None => controller.berth(&args),
    }
}

/// The deployment a command printed, with the exit code it had to end.
#[track_caller]
fn printed_with(cli: &Cli, exit: i32) -> Value {
    assert_eq!(cli.code, exit, "{}\n{}", cli.stdout, cli.stderr);
    cli.printed()
}

/// The versions the host's setup ran, in order.
fn runs(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("runs"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn audit(controller: &Controller, id: &str) -> Vec<(String, String, String)> {
    let entries = controller
        .berth(&["audit", "--target", id, "-o", "json"])
        .json();
    entries
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| {
            let field = |name: &str| entry[name].as_str().unwrap_or_default().to_string();
            (field("who"), field("action"), field("outcome"))
        })
        .collect()
}

#[test]
fn a_protected_environment_holds_an_operators_deploy_and_stop_until_approved() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "h1", "role=web");
    let (olga_token, olga) = user_token(&controller, "olga", "operator");
    let (otto_token, otto) = user_token(&controller, "otto", "operator");
    let (vera_token, _) = user_token(&controller, "vera", "viewer");
    controller
        .berth(&[
            "env",
            "create",
            "shop/prod",
            "--type",
            "production",
            "--protected",
            "--approvals",
            "2",
        ])
        .ok();
    let dir = controller.dir.path().join("host-work");
    std::fs::create_dir_all(&dir).expect("dir");

    // Olga's deploy waits; nothing of it runs.
    let held = printed_with(&deploy(&controller, Some(&olga), "1", &dir), PENDING);
    let id = id_of(&held);
    assert_eq!(held["status"], "pending_approval", "{held:#}");
    assert_eq!(
        (
            &held["approval"]["action"],
            &held["approval"]["requested_by"]
        ),
        (&json!("deploy"), &json!("olga"))
    );
    let shown = controller.show(&id);
    assert_eq!(shown["status"], "pending_approval", "{shown:#}");
    let tasks = shown["tasks"].as_array().expect("tasks");
    assert!(
        tasks
            .iter()
            .all(|task| task["status"] == "queued" && task["assigned_at"].is_null()),
        "nothing is handed to the agent: {shown:#}"
    );
    assert!(runs(&dir).is_empty(), "the host ran nothing yet");
    let listed = controller
        .berth(&["ls", "--status", "pending_approval", "-o", "json"])
        .json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed:#}");
    let text = controller.berth(&["show", &id]).ok();
    assert!(
        text.contains("waiting for approval by an admin (or another operator) until"),
        "{text}"
    );

    // Not by herself; otto, the second pair of eyes, approves.
    controller
        .berth_with(&olga, &["approve", &id, "-o", "json"])
        .refused(3, "approval/self");
    let deployed = printed_with(
        &controller.berth_with(&otto, &["approve", &id, "-o", "json"]),
        0,
    );
    assert_eq!(deployed["status"], "deployed", "{deployed:#}");
    assert_eq!(runs(&dir), ["1"]);
    let approval = &controller.show(&id)["approval"];
    assert_eq!(
        (&approval["outcome"], &approval["approved"]["by"]),
        (&json!("approved"), &json!("otto")),
        "{approval:#}"
    );
    let text = controller.berth(&["show", &id]).ok();
    assert!(text.contains("approved by otto at"), "{text}");
    let entries = audit(&controller, &id);
    for (who, action, outcome) in [
        ("olga", "deploy", "pending-approval"),
        ("otto", "approve", "approved the deploy requested by olga"),
    ] {
        assert!(
            entries
                .iter()
                .any(|entry| entry == &(who.into(), action.into(), outcome.into())),
            "no {action} by {who}: {entries:?}"
        );
    }

    // Olga's stop waits too, then runs once approved.
    let stop = ["stop", "shop", "--env", "prod", "-o", "json"];
    let waiting = printed_with(&controller.berth_with(&olga, &stop), PENDING);
    assert_eq!(
        (&waiting["status"], &waiting["approval"]["action"]),
        (&json!("deployed"), &json!("stop")),
        "{waiting:#}"
    );
    assert!(!dir.join("stopped").exists(), "the stop did not run yet");
    let stopped = printed_with(
        &controller.berth_with(&otto, &["approve", &id, "-o", "json"]),
        0,
    );
    assert_eq!(stopped["status"], "stopped", "{stopped:#}");
    assert!(dir.join("stopped").exists(), "the stop ran once approved");

    // Over HTTP with tokens: a viewer and the requester are refused,
    // another operator approves.
    let held = printed_with(&deploy(&controller, Some(&olga), "2", &dir), PENDING);
    let id = id_of(&held);
    let path = format!("/api/v1/deployments/{id}/approve");
    let as_vera = Api::new(&controller.http_url, Some(&vera_token)).post(&path, &json!({}));
    assert_eq!(
        (as_vera.status, as_vera.code()),
        (403, "auth/permission-denied".to_string()),
        "{}",
        as_vera.body
    );
    let as_olga = Api::new(&controller.http_url, Some(&olga_token)).post(&path, &json!({}));
    assert_eq!(
        (as_olga.status, as_olga.code()),
        (403, "approval/self".to_string()),
        "{}",
        as_olga.body
    );
    let as_otto = Api::new(&controller.http_url, Some(&otto_token)).post(&path, &json!({}));
    assert_eq!(as_otto.status, 200, "{}", as_otto.body);
    assert_eq!(
        as_otto.json()["approval"]["approved"]["by"],
        "otto via token ci"
    );
    let ended = controller.wait_quiet(&id);
    assert_eq!(ended["status"], "deployed", "{ended:#}");
    assert_eq!(runs(&dir), ["1", "2"]);
    let again = Api::new(&controller.http_url, Some(&otto_token)).post(&path, &json!({}));
    assert_eq!(
        (again.status, again.code()),
        (409, "approval/not-pending".to_string())
    );

    // A held stop she thinks better of: `berth cancel` withdraws it.
    printed_with(&controller.berth_with(&olga, &stop), PENDING);
    let withdrawn = printed_with(
        &controller.berth_with(&olga, &["cancel", &id, "-o", "json"]),
        0,
    );
    assert_eq!(
        (&withdrawn["status"], &withdrawn["approval"]["outcome"]),
        (&json!("deployed"), &json!("canceled")),
        "{withdrawn:#}"
    );
    controller
        .berth_with(&otto, &["approve", &id, "-o", "json"])
        .refused(5, "approval/not-pending");
}

#[test]
fn approvals_nobody_gives_expire_even_across_a_restart() {
    let mut controller = Controller::start_with(&["--approval-ttl", "3s"]);
    let _agent = Agent::join(&controller, "h1", "role=web");
    let (_, olga) = user_token(&controller, "olga", "operator");
    let (_, otto) = user_token(&controller, "otto", "operator");
    controller
        .berth(&[
            "env",
            "create",
            "shop/prod",
            "--type",
            "production",
            "--protected",
        ])
        .ok();
    let dir = controller.dir.path().join("host-work");
    std::fs::create_dir_all(&dir).expect("dir");

    // An admin's deploy goes through at once.
    let first = printed_with(&deploy(&controller, None, "1", &dir), 0);
    assert_eq!(first["status"], "deployed", "{first:#}");
    assert!(first.get("approval").is_none(), "{first:#}");
    let first_id = id_of(&first);

    // An operator's stop waits; with one approval another operator may
    // not give it.
    let stop = printed_with(
        &controller.berth_with(&olga, &["stop", "shop", "--env", "prod", "-o", "json"]),
        PENDING,
    );
    assert_eq!(id_of(&stop), first_id);
    controller
        .berth_with(&otto, &["approve", &first_id, "-o", "json"])
        .refused(3, "approval/forbidden");
    // The stop holds no slot; a deploy by olga waits beside it.
    let held = printed_with(&deploy(&controller, Some(&olga), "2", &dir), PENDING);
    let held_id = id_of(&held);

    // A restart keeps both and their expiry.
    controller.restart_gracefully();
    let canceled = controller.wait_quiet(&held_id);
    assert_eq!(canceled["status"], "canceled", "{canceled:#}");
    assert_eq!(
        canceled["error_message"], "approval expired after 3s; nobody approved it",
        "{canceled:#}"
    );
    assert_eq!(canceled["approval"]["outcome"], "expired");
    let dropped = eventually_or(
        "the held stop to expire",
        120,
        Duration::from_millis(250),
        || {
            let shown = controller.show(&first_id);
            (shown["approval"]["outcome"] == "expired").then_some(shown)
        },
        || controller.log(),
    );
    assert_eq!(dropped["status"], "deployed", "{dropped:#}");
    assert!(!dir.join("stopped").exists(), "the stop never ran");
    assert_eq!(runs(&dir), ["1"], "the held deploy never ran");
    for id in [&held_id, &first_id] {
        let entries = audit(&controller, id);
        assert!(
            entries
                .iter()
                .any(|(who, action, _)| who == "controller" && action == "approval.expired"),
            "{id}: {entries:?}"
        );
    }
    controller
        .berth(&["approve", &held_id, "-o", "json"])
        .refused(5, "approval/not-pending");
}
