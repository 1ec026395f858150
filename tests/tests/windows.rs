//! Deploy windows through the real binaries: an environment whose window
//! is closed now refuses an operator's deploy with its code and the next
//! opening, and refuses a redeploy too; the operator's `--force` does not
//! get past it; an admin's `--force` does, and the audit log says so; a
//! window that is open takes deploys; a window that is not one is refused
//! when it is set.

use berth_tests::{Agent, Controller, id_of, write_bundle};

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Today's weekday in UTC, Monday 0 (1970-01-01 was a Thursday).
fn today() -> usize {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        / 86_400;
    ((days + 3) % 7) as usize
}

#[test]
fn a_closed_window_refuses_deploys_unless_an_admin_forces_them() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "win-1", "role=win");
    let (_, olga) = berth_tests::http::user_token(&controller, "olga", "operator");
    let manifest = "app = \"shop\"\nenvironment = \"prod\"\n[target]\nlabels = { role = \"win\" }\n[setup]\nrun = [\"true\"]\n";
    let bundle = write_bundle(controller.dir.path(), "shop", manifest, &[]);
    let path = bundle.to_str().expect("path");
    let deploy = |as_admin: bool, extra: &[&str]| {
        let mut args = vec!["deploy", "--bundle", path, "-o", "json"];
        args.extend_from_slice(extra);
        if as_admin {
            controller.berth(&args)
        } else {
            controller.berth_with(&olga, &args)
        }
    };

    // Open all day today: deploys go through.
    let open = format!("{} 00:00-24:00 UTC", DAYS[today()]);
    controller
        .berth(&[
            "env",
            "create",
            "shop/prod",
            "--type",
            "production",
            "--window",
            &open,
        ])
        .ok();
    let first = deploy(false, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let first_id = id_of(&first.json());

    // Only the day after tomorrow: closed now.
    let later = DAYS[(today() + 2) % 7];
    let closed = format!("{later} 09:00-17:00 Europe/Berlin");
    controller
        .berth(&["env", "set", "shop/prod", "--window", &closed])
        .ok();
    let refused = deploy(false, &[]);
    refused.refused(1, "environment/outside-window");
    let message = refused.printed()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains(&closed) && message.contains(&format!("opens next at {later}")),
        "{message}"
    );
    deploy(false, &["--force"]).refused(1, "environment/outside-window");
    let again = controller.berth_with(&olga, &["redeploy", &first_id, "-o", "json"]);
    again.refused(1, "environment/outside-window");

    // An admin forces it; the audit log records that it was forced.
    let forced = deploy(true, &["--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    let audit = controller.berth(&["audit", "-o", "json"]).json();
    let entry = audit
        .as_array()
        .and_then(|entries| {
            entries
                .iter()
                .find(|e| e["action"] == "deploy.outside-window")
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(entry["target"], "shop/prod", "{audit:#}");
    assert!(
        entry["who"].as_str().unwrap_or_default().contains("admin"),
        "{entry:#}"
    );

    // A window that is not one is refused when it is set.
    let bad = controller.berth(&[
        "env",
        "set",
        "shop/prod",
        "--window",
        "Mon 9-17",
        "-o",
        "json",
    ]);
    bad.refused(2, "request/invalid");
    assert!(
        bad.printed()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("HH:MM"),
        "{}",
        bad.stdout
    );
}
