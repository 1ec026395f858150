//! DORA figures through the real binaries: a small real history of one
//! app in production (script deployments with known commit times, a
//! failure, a fix, a rollback, a hotfix, an open failure), then `berth
//! metrics dora -o json` and `GET /api/v1/apps/{app}/dora` checked against
//! the figures worked out here from the deployments' recorded times (read
//! back with `berth show -o json`); bad windows and unknown apps refused
//! with their codes; the app page's DORA panel in Chromium.

use berth_tests::browser::Browser;
use berth_tests::browser::session::{sign_in, user};
use berth_tests::http::{Api, user_token};
use berth_tests::{Agent, Controller, DEADLINE, id_of, write_bundle};
use serde_json::Value;

const HOUR_MS: i64 = 3_600_000;

fn manifest(outcome: &str) -> String {
    format!("app = \"shop\"\n[target]\nhosts = [\"solo\"]\n[setup]\nrun = [\"{outcome}\"]\n")
}

fn ms(text: &Value) -> i64 {
    let text = text.as_str().unwrap_or_else(|| panic!("a time: {text}"));
    let time = berth_shared::time::parse_rfc3339(text).expect("an RFC 3339 time");
    berth_shared::time::unix_ms(time)
}

/// When a deployment (as `berth show -o json` prints it) first became
/// `status`.
fn became(deployment: &Value, status: &str) -> i64 {
    let transitions = deployment["transitions"].as_array().expect("transitions");
    let transition = transitions
        .iter()
        .find(|t| t["subject"] == "deployment" && t["to"] == status)
        .unwrap_or_else(|| panic!("never {status}: {deployment:#}"));
    ms(&transition["at"])
}

/// Deploys version `version` of shop to production (`true` succeeds,
/// `false` fails), waits for it to end and returns it as stored.
fn deploy(controller: &Controller, version: &str, outcome: &str, extra: &[&str]) -> Value {
    let bundle = write_bundle(controller.dir.path(), version, &manifest(outcome), &[]);
    let mut args = vec![
        "deploy",
        "--bundle",
        bundle.to_str().expect("path"),
        "--env",
        "production",
        "--version",
        version,
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    let result = controller.berth(&args);
    let expected = if outcome == "true" { 0 } else { 1 };
    assert_eq!(
        result.code, expected,
        "{}\n{}",
        result.stdout, result.stderr
    );
    let id = id_of(&serde_json::from_str(&result.stdout).expect("json"));
    controller.wait_quiet(&id)
}

fn median(mut values: Vec<i64>) -> i64 {
    values.sort_unstable();
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2
    }
}

#[test]
fn the_figures_match_a_real_history_worked_out_by_hand() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "solo", "role=web");
    let now = berth_shared::time::now_ms();
    let commit = |hours_ago: i64| berth_shared::time::rfc3339(now - hours_ago * HOUR_MS);
    let (c1, c3, c4, c6) = (commit(5), commit(4), commit(3), commit(1));

    let v1 = deploy(&controller, "v1", "true", &["--commit-time", &c1]);
    let v2 = deploy(&controller, "v2", "false", &["--commit-time", &commit(4)]);
    let v3 = deploy(
        &controller,
        "v3",
        "true",
        &["--commit-time", &c3, "--message", "fix: v2"],
    );
    let v4 = deploy(&controller, "v4", "true", &["--commit-time", &c4]);
    let rolled = controller.berth(&["rollback", "shop", "--env", "production", "-o", "json"]);
    assert_eq!(rolled.code, 0, "{}\n{}", rolled.stdout, rolled.stderr);
    let rollback = controller.wait_quiet(&id_of(&rolled.printed()));
    assert_eq!(rollback["trigger"], "rollback", "{rollback:#}");
    let v5 = deploy(&controller, "v5", "true", &["--message", "feature"]);
    let v6 = deploy(
        &controller,
        "v6",
        "true",
        &["--commit-time", &c6, "--ref", "hotfix/v5"],
    );
    let v7 = deploy(&controller, "v7", "false", &[]);
    assert_eq!(v3["commit_time"], serde_json::json!(c3), "{v3:#}");

    let report = controller
        .berth(&[
            "metrics",
            "dora",
            "--app",
            "shop",
            "--env",
            "production",
            "-o",
            "json",
        ])
        .json();

    // Deployed: v1 v3 v4 the rollback v5 v6 = 6 in 30 days: 0.2 a day,
    // 1.4 a week: weekly or more, high.
    let frequency = &report["deployment_frequency"];
    assert_eq!(frequency["count"], 6, "{report:#}");
    assert!((frequency["per_day"].as_f64().expect("per day") - 0.2).abs() < 1e-9);
    assert_eq!(frequency["level"], "high");

    // Changes deployed: v1 v3 v4 v5 v6 (not the rollback) = 5; v5 has no
    // commit time. Lead times: deployed minus commit time.
    let lead_times = vec![
        became(&v1, "deployed") - ms(&Value::from(c1.clone())),
        became(&v3, "deployed") - ms(&Value::from(c3.clone())),
        became(&v4, "deployed") - ms(&Value::from(c4.clone())),
        became(&v6, "deployed") - ms(&Value::from(c6.clone())),
    ];
    let lead = &report["lead_time"];
    assert_eq!(
        (lead["deployed"].clone(), lead["with_commit_time"].clone()),
        (5.into(), 4.into())
    );
    assert_eq!(
        lead["median_ms"],
        median(lead_times.clone()),
        "{lead_times:?}"
    );
    assert_eq!(
        lead["p90_ms"],
        *lead_times.iter().max().expect("max"),
        "rank ⌈3.6⌉ = 4 of 4"
    );
    assert_eq!(lead["level"], "elite", "hours, under a day");

    // Changes: v1..v7 = 7. Failed: v2 (failed), v4 (rolled back), v5 (the
    // hotfix v6 came minutes later), v7 (failed) = 4; not v3, whose "fix"
    // follows a failure already counted. 4/7: low.
    let rate = &report["change_failure_rate"];
    assert_eq!(
        (rate["changes"].clone(), rate["failed"].clone()),
        (7.into(), 4.into())
    );
    assert!((rate["rate"].as_f64().expect("rate") - 4.0 / 7.0).abs() < 1e-9);
    assert_eq!(rate["level"], "low");
    let kinds: Vec<(String, String)> = rate["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| {
            (
                f["version"].as_str().unwrap_or_default().into(),
                f["kind"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("v2", "failed"),
        ("v4", "rolled_back"),
        ("v5", "fixed"),
        ("v7", "failed"),
    ]
    .iter()
    .map(|(v, k)| (v.to_string(), k.to_string()))
    .collect();
    assert_eq!(kinds, expected);

    // Restored by the next deployment to reach deployed: v2 by v3, v4 by
    // the rollback, v5 by v6; v7 is open since it failed.
    let restore_times = vec![
        became(&v3, "deployed") - became(&v2, "failed"),
        became(&rollback, "deployed") - became(&v4, "deployed"),
        became(&v6, "deployed") - became(&v5, "deployed"),
    ];
    let restore = &report["time_to_restore"];
    assert_eq!(restore["restored"], 3);
    assert_eq!(
        restore["median_ms"],
        median(restore_times.clone()),
        "{restore_times:?}"
    );
    assert_eq!(restore["level"], "elite", "seconds, under an hour");
    let open = restore["open"].as_array().expect("open");
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["deployment_id"], v7["id"]);
    assert_eq!(ms(&open[0]["since"]), became(&v7, "failed"));

    // The HTTP API gives the same figures (its window ends a moment later).
    let (token, _) = user_token(&controller, "vera", "viewer");
    let api = Api::new(&controller.http_url, Some(&token));
    let reply = api.get("/api/v1/apps/shop/dora?environment=production&since=30d&fix_window=1h");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let served = reply.json();
    for figure in [
        "deployment_frequency",
        "lead_time",
        "change_failure_rate",
        "time_to_restore",
    ] {
        assert_eq!(served[figure], report[figure], "{figure}");
    }

    // The human table names each figure with its level.
    let table = controller.berth(&["metrics", "dora", "--app", "shop"]).ok();
    for line in [
        "deployment frequency",
        "57.1% (4 of 7 changes)",
        "open failure",
    ] {
        assert!(table.contains(line), "{line:?} in:\n{table}");
    }

    // Bad windows and unknown apps, with their codes.
    let metrics = |args: &[&str]| {
        let mut all = vec!["metrics", "dora", "-o", "json"];
        all.extend_from_slice(args);
        controller.berth(&all)
    };
    metrics(&["--app", "shop", "--since", "abc"]).refused(2, "metrics/invalid-window");
    metrics(&["--app", "shop", "--since=-5d"]).refused(2, "metrics/invalid-window");
    metrics(&["--app", "shop", "--fix-window", "30d"]).refused(2, "metrics/invalid-window");
    metrics(&["--app", "nope"]).refused(4, "app/not-found");
    let bad = api.get("/api/v1/apps/shop/dora?since=abc");
    assert_eq!(
        (bad.status, bad.code()),
        (400, "metrics/invalid-window".into())
    );
    let unknown = api.get("/api/v1/apps/nope/dora");
    assert_eq!(
        (unknown.status, unknown.code()),
        (404, "app/not-found".into())
    );

    // The app page's panel shows the same figures.
    let Some(browser) = Browser::start("dora::panel") else {
        return;
    };
    user(&controller, "vic", "viewer");
    sign_in(&browser, &controller.http_url, "vic");
    browser.goto(&format!("{}/apps/shop", controller.http_url));
    let shown = browser.wait_for_text("[data-figure=\"change-failure-rate\"]", "57.1%", DEADLINE);
    assert!(shown.contains("4 of 7 changes"), "{shown}");
    let deployed = browser.text("[data-figure=\"deployment-frequency\"]");
    assert!(deployed.starts_with("6 deployed"), "{deployed}");
    browser.screenshot("dora");
}
