//! An app's resources on the dashboard, in a real Chromium against the
//! real binaries and a private dockerd: after a deploy of the counting app
//! with its store `db`, the Status page shows the store on its host
//! (running, healthy, its image and volume, from the agent's heartbeat),
//! and the host's page lists its container beside the app's in the live
//! inspect. Screenshots at desktop and phone sizes; no console error.

use berth_tests::browser::session::{fits, sign_in, user};
use berth_tests::browser::{Browser, DESKTOP, PHONE};
use berth_tests::docker::Dockerd;
use berth_tests::resource::{self, KV_COMMAND, KV_IMAGE};
use berth_tests::{Agent, Controller, DEADLINE, write_bundle};

const HOST: &str = "box-1";

#[test]
fn the_dashboard_shows_an_apps_resources() {
    let Some(dockerd) = Dockerd::start("web_resources") else {
        return;
    };
    let Some(browser) = Browser::start("web_resources::status") else {
        return;
    };
    resource::import(&dockerd);
    let controller = Controller::start();
    let _agent = Agent::join_with_args(
        &controller,
        HOST,
        "role=db",
        &["--docker-host", &dockerd.host],
    );
    let store = resource::db_section(KV_IMAGE, KV_COMMAND, "30s", false);
    let manifest = resource::counter_manifest("notes", HOST, "staging", "1", &store);
    let bundle = write_bundle(controller.dir.path(), "notes-1", &manifest, &[]);
    let (code, deployment, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 0, "{stderr}\n{deployment:#}");

    user(&controller, "vera", "viewer");
    let base = controller.http_url.clone();
    sign_in(&browser, &base, "vera");
    // The page is rendered from what the agents reported last: it has the
    // store from the heartbeat after the deploy.
    let shown = berth_tests::eventually(
        "the Status page showing the store",
        60,
        std::time::Duration::from_millis(500),
        || {
            browser.goto(&format!("{base}/status"));
            let text = browser.wait_for_text("h1", "Status", DEADLINE);
            let text = format!("{text}\n{}", browser.text("main"));
            (text.contains("resource db running") && text.contains("healthy")).then_some(text)
        },
    );
    assert!(
        shown.contains(KV_IMAGE) && shown.contains("berth-notes-staging-box-1-db-data:/data"),
        "{shown}"
    );
    browser.screenshot("status-resources");
    browser.set_viewport(PHONE);
    if let Err(wide) = fits(&browser) {
        panic!("the Status page with resources is wider than a phone: {wide}");
    }
    browser.screenshot("status-resources-phone");
    browser.set_viewport(DESKTOP);

    browser.goto(&format!("{base}/fleet/{HOST}"));
    let inspect = browser.wait_for_text("main", "resource db", DEADLINE);
    assert!(
        inspect.contains("berth-notes-staging-box-1-db-data:/data") && inspect.contains(KV_IMAGE),
        "{inspect}"
    );
    browser.screenshot("agent-resources");
    assert_eq!(browser.console_errors(), Vec::<String>::new());
}
