//! Deployment history through the real `berth ls`: filters by app,
//! environment, status and user, free-text search, sorting both ways,
//! paging, and usage errors for unknown values.

use berth_tests::{Agent, Controller, id_of, write_bundle};

/// Deploys a script-only app to the `solo` agent and returns its id once
/// it has ended (`berth deploy` follows it to a final state).
fn deploy(controller: &Controller, app: &str, env: &str, succeeds: bool) -> String {
    let command = if succeeds { "true" } else { "false" };
    let manifest =
        format!("app = \"{app}\"\n[target]\nhosts = [\"solo\"]\n[setup]\nrun = [\"{command}\"]\n");
    let bundle = write_bundle(
        controller.dir.path(),
        &format!("{app}-{env}-{succeeds}"),
        &manifest,
        &[],
    );
    let bundle = bundle.to_str().expect("path");
    let result = controller.berth(&["deploy", "--bundle", bundle, "--env", env, "-o", "json"]);
    let expected_code = if succeeds { 0 } else { 1 };
    assert_eq!(
        result.code, expected_code,
        "deploy {app} in {env}: {}",
        result.stderr
    );
    let deployment: serde_json::Value = serde_json::from_str(&result.stdout).expect("json");
    let expected_status = if succeeds { "deployed" } else { "failed" };
    assert_eq!(deployment["status"], expected_status, "{deployment:#}");
    id_of(&deployment)
}

/// The ids `berth ls ARGS -o json` prints, in order.
fn ls(controller: &Controller, args: &[&str]) -> Vec<String> {
    let mut all = vec!["ls"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let listed = controller.berth(&all).json();
    listed
        .as_array()
        .unwrap_or_else(|| panic!("ls prints an array: {listed}"))
        .iter()
        .map(id_of)
        .collect()
}

#[test]
fn ls_filters_searches_sorts_and_pages() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "solo", "role=web");
    // Deployed in this order, so ids (and creation times) ascend. The
    // second web/prod deployment fails, so nothing gets superseded behind
    // the test's back.
    let ids = [
        deploy(&controller, "web", "prod", true),
        deploy(&controller, "api", "prod", false),
        deploy(&controller, "web", "staging", true),
        deploy(&controller, "worker", "prod", false),
        deploy(&controller, "web", "prod", false),
    ];
    let pick = |numbers: &[usize]| -> Vec<String> {
        numbers
            .iter()
            .map(|number| ids[number - 1].clone())
            .collect()
    };
    let cases: &[(&[&str], &[usize])] = &[
        (&[], &[5, 4, 3, 2, 1]),
        (&["--asc"], &[1, 2, 3, 4, 5]),
        (&["--app", "web"], &[5, 3, 1]),
        (&["--app", "web", "--env", "prod"], &[5, 1]),
        (&["--env", "staging"], &[3]),
        (&["--status", "failed"], &[5, 4, 2]),
        (
            &["--status", "deployed,canceled", "--status", "timed_out"],
            &[3, 1],
        ),
        (&["--app", "web", "--status", "failed"], &[5]),
        (&["--by", "admin"], &[5, 4, 3, 2, 1]),
        (&["--by", "someone-else"], &[]),
        (&["--search", "WEB"], &[5, 3, 1]),
        (&["--search", "ork"], &[4]),
        (&["--search", "adm"], &[5, 4, 3, 2, 1]),
        (&["--search", "web", "--env", "prod"], &[5, 1]),
        (&["--sort", "app", "--asc"], &[2, 5, 1, 3, 4]),
        (&["--sort", "app"], &[4, 3, 5, 1, 2]),
        (&["--sort", "status", "--asc"], &[3, 1, 5, 4, 2]),
        (&["--sort", "status"], &[5, 4, 2, 3, 1]),
        (&["--limit", "2"], &[5, 4]),
        (&["--limit", "2", "--offset", "2"], &[3, 2]),
        (&["--offset", "4"], &[1]),
        (&["--offset", "5"], &[]),
        (
            &["--sort", "app", "--asc", "--limit", "2", "--offset", "1"],
            &[5, 1],
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(ls(&controller, args), pick(expected), "berth ls {args:?}");
    }

    // An id prefix, in any case, finds that deployment.
    let second = ids[1].to_lowercase();
    assert_eq!(ls(&controller, &["--search", &second[..20]]), pick(&[2]));

    // The table names the deployments too, by a 10-character prefix;
    // -o wide whole.
    let table = controller.berth(&["ls", "--app", "worker"]).ok();
    assert!(
        table.contains(&ids[3][..10]) && table.contains("worker"),
        "{table}"
    );
    let wide = controller
        .berth(&["ls", "--app", "worker", "-o", "wide"])
        .ok();
    assert!(wide.contains(&ids[3]), "{wide}");
}

#[test]
fn ls_refuses_unknown_values_with_usage_errors() {
    let controller = Controller::start();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--sort", "size"],
            &["--sort", "size", "created, status, app"],
        ),
        (
            &["--status", "deployed,gone"],
            &["--status", "gone", "pending"],
        ),
        (&["--limit", "0"], &["--limit"]),
        (&["--offset", "2000000"], &["--offset"]),
    ];
    for (args, words) in cases {
        let mut all = vec!["ls"];
        all.extend_from_slice(args);
        let result = controller.berth(&all);
        assert_eq!(result.code, 2, "berth ls {args:?}: {}", result.stderr);
        assert!(result.stdout.is_empty(), "{}", result.stdout);
        for word in *words {
            assert!(
                result.stderr.contains(word),
                "berth ls {args:?} should name {word}: {}",
                result.stderr
            );
        }
    }
    // The controller checks the search length itself.
    let long = "x".repeat(201);
    let result = controller.berth(&["ls", "--search", &long]);
    assert_eq!(result.code, 2, "{}", result.stderr);
    assert!(result.stderr.contains("search"), "{}", result.stderr);
}
