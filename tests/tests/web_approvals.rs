//! Approving in a real Chromium against the real binaries: an operator's
//! deploys to a protected environment (two approvals) wait in
//! `pending_approval`; another operator signed in to the dashboard sees
//! Approve on the deployment's page and on its row of the Deployments
//! list, confirms it in a dialog, and sees the deployment approved (by
//! whom) and deployed without a reload; the page with its approval passes
//! axe-core; no console error or CSP violation.

use berth_tests::browser::a11y::Axe;
use berth_tests::browser::session::{sign_in, user};
use berth_tests::browser::{Browser, PHONE};
use berth_tests::http::user_token;
use berth_tests::{Agent, Controller, DEADLINE, id_of, write_bundle};

fn held_deploy(controller: &Controller, olga: &std::path::Path, version: &str) -> String {
    let manifest = format!(
        "app = \"shop\"\nenvironment = \"prod\"\nversion = \"{version}\"\n[target]\nhosts = [\"h1\"]\n[setup]\nrun = [\"true\"]\n"
    );
    let bundle = write_bundle(
        controller.dir.path(),
        &format!("shop-{version}"),
        &manifest,
        &[],
    );
    let held = controller.berth_with(
        olga,
        &[
            "deploy",
            "--bundle",
            bundle.to_str().expect("path"),
            "-o",
            "json",
        ],
    );
    assert_eq!(held.code, 6, "{}\n{}", held.stdout, held.stderr);
    let deployment = held.printed();
    assert_eq!(deployment["status"], "pending_approval", "{deployment:#}");
    id_of(&deployment)
}

#[test]
fn another_operator_approves_on_the_page_and_in_the_list() {
    let Some(browser) = Browser::start("web_approvals::approve") else {
        return;
    };
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "h1", "role=web");
    let (_, olga) = user_token(&controller, "olga", "operator");
    user(&controller, "otto", "operator");
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
    let base = controller.http_url.clone();
    let first = held_deploy(&controller, &olga, "1");
    sign_in(&browser, &base, "otto");

    // On the deployment's page: what it waits for, and Approve.
    let row = format!("tr[data-id=\"{first}\"]");
    browser.wait_for(&format!("{row} .s-pending_approval"), DEADLINE);
    browser.click(&format!("{row} a"));
    browser.wait_for_text("#approval-text", "waiting for approval", DEADLINE);
    assert_eq!(browser.text("#status"), "pending_approval");
    browser.screenshot("deployment-approval");
    if let Some(axe) = Axe::load("web_approvals::approve") {
        let serious: Vec<String> = axe
            .check(&browser)
            .into_iter()
            .filter(|violation| violation.is_serious())
            .map(|violation| violation.to_string())
            .collect();
        assert!(serious.is_empty(), "{}", serious.join("\n"));
    }
    browser.click("#approval button[data-action=approve]");
    browser.wait_for_text("dialog", "It runs now", DEADLINE);
    browser.click("dialog button.danger");
    browser.wait_for_text("#approval-text", "approved by otto", DEADLINE);
    assert_eq!(browser.count("#approval button"), 0, "approved once");
    browser.wait_for_text("#status", "deployed", DEADLINE);

    // On the Deployments list: the row's Approve.
    let second = held_deploy(&controller, &olga, "2");
    browser.goto(&format!("{base}/"));
    let row = format!("tr[data-id=\"{second}\"]");
    browser.wait_for(&format!("{row} button[data-action=approve]"), DEADLINE);
    browser.screenshot("deployments-approval");
    browser.set_viewport(PHONE);
    browser.screenshot("deployments-approval-phone");
    browser.set_viewport(berth_tests::browser::DESKTOP);
    browser.click(&format!("{row} button[data-action=approve]"));
    browser.wait_for_text("dialog", "shop (prod)", DEADLINE);
    browser.click("dialog button.danger");
    browser.wait_for_text(&format!("{row} .status"), "deployed", DEADLINE);
    assert_eq!(
        browser.count(&format!("{row} button[data-action=approve]")),
        0,
        "nothing to approve any more"
    );
    let shown = controller.show(&second);
    assert_eq!(shown["approval"]["approved"]["by"], "otto", "{shown:#}");
    assert_eq!(browser.console_errors(), Vec::<String>::new());
}
