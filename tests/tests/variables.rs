//! A deployment's variables through the real binaries: the manifest's
//! `[env]` reaching a script's environment and a container's env on a
//! real Docker daemon, `[container] env` beside it, every variable listed
//! with its source by `berth show` (text and JSON) and the HTTP API, and
//! a redeploy running with the same snapshot.

use berth_tests::docker::{Dockerd, HTTPD, IMAGE};
use berth_tests::{Agent, Controller, id_of, write_bundle};

fn sources(deployment: &serde_json::Value) -> Vec<(String, String, String)> {
    deployment["variables"]
        .as_array()
        .map(|variables| {
            variables
                .iter()
                .map(|v| {
                    let text = |key: &str| v[key].as_str().unwrap_or_default().to_string();
                    (text("name"), text("value"), text("source"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn triple(name: &str, value: &str, source: &str) -> (String, String, String) {
    (name.into(), value.into(), source.into())
}

#[test]
fn a_script_sees_the_manifests_variables_and_show_lists_them() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "vars-1", "role=vars");
    let manifest = "app = \"vars\"\nversion = \"1\"\n[target]\nlabels = { role = \"vars\" }\n[env]\nGREETING = \"hello from env\"\nCOUNT = 3\n[setup]\nrun = [\"echo \\\"greeting=$GREETING count=$COUNT app=$BERTH_APP\\\"\"]\n";
    let bundle = write_bundle(controller.dir.path(), "vars", manifest, &[]);
    let (code, deployment, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 0, "{stderr}\n{deployment:#}");
    let id = id_of(&deployment);
    let logs = controller.berth(&["logs", &id]).ok();
    assert!(
        logs.contains("greeting=hello from env count=3 app=vars"),
        "{logs}"
    );
    let shown = controller.show(&id);
    assert_eq!(
        sources(&shown),
        [
            triple("COUNT", "3", "manifest"),
            triple("GREETING", "hello from env", "manifest")
        ]
    );
    let text = controller.berth(&["show", &id]).ok();
    assert!(
        text.contains("GREETING=hello from env (manifest)"),
        "{text}"
    );

    // The HTTP API lists the same.
    let (token, _) = berth_tests::http::user_token(&controller, "val", "viewer");
    let api = berth_tests::http::Api::new(&controller.http_url, Some(&token));
    let got = api.get(&format!("/api/v1/deployments/{id}"));
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(sources(&got.json()), sources(&shown));

    // A redeploy runs with the snapshot it repeats.
    let redeployed = controller.berth(&["redeploy", &id, "-o", "json"]);
    assert_eq!(redeployed.code, 0, "{}", redeployed.stderr);
    let again = id_of(&redeployed.json());
    let settled = controller.wait_quiet(&again);
    assert_eq!(settled["status"], "deployed", "{settled:#}");
    assert_eq!(sources(&settled), sources(&shown));

    // A name that is berth's own is refused before anything runs.
    let bad = write_bundle(
        controller.dir.path(),
        "bad",
        "app = \"vars\"\n[target]\nlabels = { role = \"vars\" }\n[env]\nBERTH_APP = \"x\"\n[setup]\nrun = [\"true\"]\n",
        &[],
    );
    let (code, _, stderr) = controller.deploy(&bad);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("env.BERTH_APP") && stderr.contains("berth's own"),
        "{stderr}"
    );
}

#[test]
fn a_container_gets_the_variables_as_its_env() {
    let Some(dockerd) = Dockerd::start("a_container_gets_the_variables_as_its_env") else {
        return;
    };
    dockerd.import_busybox(IMAGE);
    let controller = Controller::start();
    let _agent = Agent::join_with_args(
        &controller,
        "vars-box",
        "role=box",
        &["--docker-host", &dockerd.host],
    );
    let manifest = format!(
        "app = \"boxed\"\nversion = \"1\"\n[target]\nlabels = {{ role = \"box\" }}\n[env]\nGREETING = \"from env\"\nSHARED = \"env\"\n[container]\nimage = \"{IMAGE}\"\nport = 8080\ncommand = {HTTPD}\nstop_timeout = \"1s\"\nenv = {{ SHARED = \"container\", ONLY = \"box\" }}\n"
    );
    let bundle = write_bundle(controller.dir.path(), "boxed", &manifest, &[]);
    let (code, deployment, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 0, "{stderr}\n{deployment:#}");
    let containers = dockerd.containers_of("boxed");
    assert_eq!(containers.len(), 1, "{containers:?}");
    let name = containers[0].split_whitespace().next().unwrap_or_default();
    let env = dockerd.docker_ok(&["inspect", "-f", "{{json .Config.Env}}", name]);
    for expected in ["GREETING=from env", "SHARED=container", "ONLY=box"] {
        assert!(env.contains(expected), "{expected} in {env}");
    }
    assert_eq!(
        sources(&deployment),
        [
            triple("GREETING", "from env", "manifest"),
            triple("ONLY", "box", "container"),
            triple("SHARED", "container", "container"),
        ]
    );
    controller.berth(&["delete", &id_of(&deployment)]).ok();
}

#[test]
fn the_environments_variables_override_the_manifests_at_the_next_deploy() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "vars-2", "role=vars");
    let manifest = |environment: &str| {
        let named = if environment.is_empty() {
            String::new()
        } else {
            format!("environment = \"{environment}\"\n")
        };
        format!(
            "app = \"shop\"\n{named}[target]\nlabels = {{ role = \"vars\" }}\n[env]\nREGION = \"manifest\"\nLEVEL = \"info\"\n[setup]\nrun = [\"echo \\\"region=$REGION level=$LEVEL\\\"\"]\n"
        )
    };
    let deploy = |environment: &str, name: &str| {
        let bundle = write_bundle(controller.dir.path(), name, &manifest(environment), &[]);
        let (code, deployment, stderr) = controller.deploy(&bundle);
        assert_eq!(code, 0, "{stderr}\n{deployment:#}");
        deployment
    };

    // A first deploy to an environment with no record makes one.
    let first = deploy("staging", "first");
    let made = controller
        .berth(&["env", "show", "shop/staging", "-o", "json"])
        .json();
    assert_eq!(made["type"], "development", "{made:#}");

    // Its variables override the manifest's from the next deploy on; the
    // earlier deployment keeps what it ran with.
    controller
        .berth(&["env", "set", "shop/staging", "--var", "REGION=eu-west"])
        .ok();
    let second = deploy("staging", "second");
    let logs = controller.berth(&["logs", &id_of(&second)]).ok();
    assert!(logs.contains("region=eu-west level=info"), "{logs}");
    assert_eq!(
        sources(&second),
        [
            triple("LEVEL", "info", "manifest"),
            triple("REGION", "eu-west", "environment")
        ]
    );
    assert_eq!(
        sources(&controller.show(&id_of(&first))),
        [
            triple("LEVEL", "info", "manifest"),
            triple("REGION", "manifest", "manifest")
        ]
    );
    let text = controller.berth(&["show", &id_of(&second)]).ok();
    assert!(text.contains("REGION=eu-west (environment)"), "{text}");

    // A manifest naming no environment goes to the app's default one.
    controller
        .berth(&[
            "env",
            "create",
            "shop/production",
            "--type",
            "production",
            "--default",
        ])
        .ok();
    let unnamed = deploy("", "unnamed");
    assert_eq!(unnamed["environment"], "production", "{unnamed:#}");
    // ... and so does a command naming only the app, now that it has two.
    let logs = controller.berth(&["logs", "shop"]).ok();
    assert!(logs.contains("region=manifest"), "{logs}");
}
