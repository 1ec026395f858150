//! Environments as records through the real binaries: an admin creates a
//! protected production (the app's default) and a staging with variables
//! over the CLI, lists and changes them (`--var`, `--unset`); an operator
//! is refused unprotecting production over the CLI and over the HTTP API
//! with its token, and refused removing it; the admin removes it; the
//! audit names the variables it touched but never holds their values.

use berth_tests::http::{self, Api, Body, user_token};
use berth_tests::{Controller, skip};
use serde_json::json;

/// A value no audit entry may hold.
const SECRET: &str = "postgres://app:hunter2-7c1f@db/shop";

#[test]
fn environments_are_made_changed_and_guarded_over_cli_and_http() {
    let controller = Controller::start();
    let made = controller
        .berth(&[
            "env",
            "create",
            "shop/production",
            "--type",
            "production",
            "--protected",
            "--default",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(
        (
            &made["type"],
            &made["default"],
            &made["protected"],
            &made["approvals"]
        ),
        (&json!("production"), &json!(true), &json!(true), &json!(1)),
        "{made:#}"
    );
    let database_url = format!("DATABASE_URL={SECRET}");
    let staging = controller
        .berth(&[
            "env",
            "create",
            "shop/staging",
            "--type",
            "staging",
            "--var",
            "LOG=debug",
            "--var",
            &database_url,
        ])
        .ok();
    assert!(
        staging.contains("environment shop/staging created: staging, 2 variables"),
        "{staging}"
    );
    let again = controller.berth(&[
        "env",
        "create",
        "shop/staging",
        "--type",
        "staging",
        "-o",
        "json",
    ]);
    again.refused(5, "environment/exists");

    let listed = controller.berth(&["env", "ls", "-o", "json"]).json();
    let names: Vec<String> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|env| format!("{}/{}", env["app"], env["name"]).replace('"', ""))
        .collect();
    assert_eq!(names, ["shop/production", "shop/staging"], "{listed:#}");
    assert_eq!(
        listed[1]["vars"],
        json!({"DATABASE_URL": SECRET, "LOG": "debug"})
    );
    let table = controller.berth(&["env", "ls", "shop"]).ok();
    assert!(
        table.contains("production") && table.contains("yes (1)"),
        "{table}"
    );

    let changed = controller
        .berth(&[
            "env",
            "set",
            "shop/staging",
            "--var",
            "LOG=info",
            "--var",
            "WORKERS=4",
            "--unset",
            "DATABASE_URL",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(changed["vars"], json!({"LOG": "info", "WORKERS": "4"}));
    let shown = controller.berth(&["env", "show", "shop/staging"]).ok();
    assert!(
        shown.contains("shop/staging: staging, 2 variables") && shown.contains("  WORKERS=4"),
        "{shown}"
    );
    controller
        .berth(&["env", "show", "shop", "-o", "json"])
        .refused(2, "cli/usage");
    controller
        .berth(&["env", "set", "shop/staging", "--var", "1X=y", "-o", "json"])
        .refused(2, "request/invalid");

    // An operator may not unprotect production, nor remove it.
    let (olga_token, olga_bundle) = user_token(&controller, "olga", "operator");
    let olga = |args: &[&str]| controller.berth_with(&olga_bundle, args);
    let unprotect = olga(&[
        "env",
        "set",
        "shop/production",
        "--unprotected",
        "-o",
        "json",
    ]);
    unprotect.refused(3, "auth/permission-denied");
    assert!(
        unprotect.stderr.contains("needs an admin"),
        "{}",
        unprotect.stderr
    );
    olga(&["env", "rm", "shop/production", "-o", "json"]).refused(3, "auth/permission-denied");
    // Variables are an operator's to change.
    olga(&["env", "set", "shop/staging", "--unset", "WORKERS"]).ok();

    if http::has_curl() {
        let api = Api::new(&controller.http_url, Some(&olga_token));
        let json_body = [("Content-Type", "application/json")];
        let path = "/api/v1/apps/shop/environments/production";
        let answer = api.request(
            "PATCH",
            path,
            &json_body,
            Body::Text(r#"{"protected": false}"#),
        );
        assert_eq!(
            (answer.status, answer.code()),
            (403, "auth/permission-denied".into()),
            "{}",
            answer.body
        );
        let read = api.get(path);
        assert_eq!(read.status, 200, "{}", read.body);
        assert_eq!(read.json()["protected"], true);
        let all = api.get("/api/v1/environments");
        assert_eq!(all.json()["environments"].as_array().map(Vec::len), Some(2));
    } else {
        skip(
            "environments_are_made_changed_and_guarded_over_cli_and_http (HTTP part)",
            "curl (scripts/toolchain.sh installs it)",
        );
    }

    // The admin removes it; its record is gone.
    let removed = controller.berth(&["env", "rm", "shop/production"]).ok();
    assert!(
        removed.contains("environment shop/production removed"),
        "{removed}"
    );
    controller
        .berth(&["env", "show", "shop/production", "-o", "json"])
        .refused(4, "environment/not-found");

    let audit = controller.berth(&["audit", "-o", "json"]).ok();
    for entry in [
        "environment.create",
        "environment.set",
        "environment.remove",
        "unset DATABASE_URL",
        "olga",
    ] {
        assert!(audit.contains(entry), "{entry} is audited: {audit}");
    }
    assert!(!audit.contains(SECRET), "a value is audited: {audit}");
}
