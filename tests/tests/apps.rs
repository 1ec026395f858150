//! The app catalogue and its ratings through the real binaries: two apps
//! deployed by a real agent, rated by a viewer (twice: the second replaces
//! the first) and an operator, over the CLI and the HTTP API; the counts
//! and averages come out the same both ways, a user's token and its
//! certificate rate as one user, refusals carry their codes, `--clear`
//! takes a rating back, and each change is audited.

use berth_tests::http::{self, Api, Body, user_token};
use berth_tests::{Agent, Controller, skip};
use serde_json::{Value, json};

/// A script-only app on the `role=web` agent.
fn manifest(app: &str, version: &str) -> String {
    format!(
        "app = \"{app}\"\nversion = \"{version}\"\n[target]\nlabels = {{ role = \"web\" }}\n[setup]\nrun = [\"echo {app} {version}\"]\n"
    )
}

/// The app named `name` in a catalogue.
fn app<'a>(apps: &'a Value, name: &str) -> &'a Value {
    apps.as_array()
        .and_then(|apps| apps.iter().find(|app| app["app"] == name))
        .unwrap_or_else(|| panic!("{name} is not listed: {apps:#}"))
}

#[test]
fn users_rate_apps_and_lists_show_the_average_over_cli_and_http() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "web-1", "role=web");
    controller.deploy_ok("shop-1", &manifest("shop", "1"));
    controller.deploy_ok("shop-2", &manifest("shop", "2"));
    controller.deploy_ok("blog-1", &manifest("blog", "7"));
    let (ana_token, ana_bundle) = user_token(&controller, "ana", "viewer");
    let (bo_token, _) = user_token(&controller, "bo", "operator");
    let ana = |args: &[&str]| controller.berth_with(&ana_bundle, args);

    // A viewer rates; rating again replaces her first rating.
    let first = ana(&["apps", "rate", "shop", "2", "-o", "json"]).json();
    assert_eq!(
        (&first["count"], &first["my_stars"]),
        (&json!(1), &json!(2))
    );
    let again = ana(&["apps", "rate", "shop", "5"]).ok();
    assert!(
        again.contains("you rated shop ★★★★★") && again.contains("average 5.0 from 1 rating"),
        "{again}"
    );
    controller.berth(&["apps", "rate", "blog", "3"]).ok();

    let http_ready = http::has_curl();
    if !http_ready {
        skip(
            "users_rate_apps_and_lists_show_the_average_over_cli_and_http (HTTP part)",
            "curl (scripts/toolchain.sh installs it)",
        );
        return;
    }
    let bo = Api::new(&controller.http_url, Some(&bo_token));
    let json_body = [("Content-Type", "application/json")];
    let rate = |api: &Api, app: &str, body: &str| {
        let path = format!("/api/v1/apps/{app}/rating");
        api.request("PUT", &path, &json_body, Body::Text(body))
    };
    let rated = rate(&bo, "shop", r#"{"stars": 4}"#);
    assert_eq!(rated.status, 200, "{}", rated.body);
    assert_eq!(rated.json()["average"], 4.5, "{}", rated.body);

    // The CLI and the HTTP API list the same counts and averages, each
    // with the caller's own stars.
    let listed = ana(&["apps", "ls", "-o", "json"]).json();
    let shop = app(&listed, "shop");
    assert_eq!(
        (&shop["rating"]["count"], &shop["rating"]["average"]),
        (&json!(2), &json!(4.5)),
        "{shop:#}"
    );
    assert_eq!(shop["rating"]["histogram"], json!([0, 0, 0, 1, 1]));
    assert_eq!(shop["rating"]["my_stars"], 5);
    let latest = &shop["environments"][0];
    assert_eq!(latest["environment"], "default");
    assert_eq!(latest["latest"]["version"], "2", "{shop:#}");
    assert_eq!(latest["latest"]["status"], "deployed");
    let blog = app(&listed, "blog");
    assert_eq!(
        (&blog["rating"]["count"], &blog["rating"]["average"]),
        (&json!(1), &json!(3.0))
    );
    assert_eq!(blog["rating"]["my_stars"], Value::Null);
    let over_http = bo.get("/api/v1/apps");
    assert_eq!(over_http.status, 200, "{}", over_http.body);
    let apps = &over_http.json()["apps"];
    assert_eq!(app(apps, "shop")["rating"]["count"], 2);
    assert_eq!(app(apps, "shop")["rating"]["average"], 4.5);
    assert_eq!(app(apps, "shop")["rating"]["my_stars"], 4);
    assert_eq!(app(apps, "blog")["rating"]["average"], 3.0);
    let table = ana(&["apps", "ls"]).ok();
    assert!(
        table.contains("shop") && table.contains("★ 4.5") && table.contains("★★★★★"),
        "{table}"
    );

    // Ana's token is Ana: its rating replaces the one her certificate gave.
    let ana_api = Api::new(&controller.http_url, Some(&ana_token));
    let replaced = rate(&ana_api, "shop", r#"{"stars": 1}"#);
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(
        (&replaced.json()["count"], &replaced.json()["average"]),
        (&json!(2), &json!(2.5))
    );

    // Refusals: an app without deployments, stars out of range.
    ana(&["apps", "rate", "nothing", "3", "-o", "json"]).refused(4, "app/not-found");
    ana(&["apps", "show", "nothing", "-o", "json"]).refused(4, "app/not-found");
    for stars in ["0", "6"] {
        let cli = ana(&["apps", "rate", "shop", stars, "-o", "json"]);
        cli.refused(2, "rating/invalid");
        assert!(cli.stderr.contains("from 1 to 5"), "{}", cli.stderr);
        let body = format!("{{\"stars\": {stars}}}");
        let answer = rate(&bo, "shop", &body);
        assert_eq!(
            (answer.status, answer.code()),
            (400, "rating/invalid".into())
        );
    }
    let missing = rate(&bo, "nothing", r#"{"stars": 3}"#);
    assert_eq!(
        (missing.status, missing.code()),
        (404, "app/not-found".into())
    );

    // --clear takes Ana's rating back; Bo's stays.
    let cleared = ana(&["apps", "rate", "shop", "--clear", "-o", "json"]).json();
    assert_eq!(
        (&cleared["count"], &cleared["average"], &cleared["my_stars"]),
        (&json!(1), &json!(4.0), &Value::Null)
    );
    let shown = ana(&["apps", "show", "shop", "-o", "json"]).json();
    let versions: Vec<&str> = shown["environments"][0]["deployments"]
        .as_array()
        .expect("deployments")
        .iter()
        .filter_map(|deployment| deployment["version"].as_str())
        .collect();
    assert_eq!(versions, ["2", "1"], "{shown:#}");
    assert_eq!(shown["rating"]["count"], 1);
    let audit = controller
        .berth(&["audit", "--target", "shop", "-o", "json"])
        .ok();
    for entry in [
        "ana",
        "ana via token ci",
        "bo via token ci",
        "rating.set",
        "rating.clear",
    ] {
        assert!(audit.contains(entry), "{entry} is audited: {audit}");
    }
}
