//! The Deployments page in a real Chromium against the real binaries:
//! signing in from the redirect; a deploy made with the CLI appearing and
//! going to `deployed` without a reload; a hostile value rendered as text;
//! search; the delete confirmation; a viewer seeing no action and a forged
//! change refused; screenshots at desktop and phone sizes, and no console
//! error or CSP violation.

use berth_tests::browser::session::{fits, sign_in, user};
use berth_tests::browser::{Browser, DESKTOP, PHONE};
use berth_tests::http::{self, Api};
use berth_tests::{Agent, Controller, DEADLINE, id_of, write_bundle};
use serde_json::json;

#[test]
fn the_deployments_page_lives_searches_and_guards_its_actions() {
    let Some(browser) = Browser::start("web_deployments::page") else {
        return;
    };
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "web-1", "role=web");
    user(&controller, "olga", "operator");
    user(&controller, "vic", "viewer");
    let base = controller.http_url.clone();

    // A wrong password says so on the page; the right one signs in.
    browser.goto(&format!("{base}/login"));
    browser.wait_for("#sign-in", DEADLINE);
    browser.screenshot("login");
    browser.fill("#name", "olga");
    browser.fill("#password", "not the password");
    browser.click("#sign-in button[type=submit]");
    browser.wait_for_text("#sign-in .error", "wrong user name or password", DEADLINE);
    // The refused sign-in is the one error the browser logs on its own.
    let refused = browser.console_errors();
    assert!(
        refused.len() == 1 && refused[0].contains("/api/v1/session") && refused[0].contains("401"),
        "{refused:#?}"
    );
    sign_in(&browser, &base, "olga");
    assert_eq!(browser.count("tr[data-id]"), 0);

    // A deploy made with the CLI shows up and settles without a reload.
    browser.execute("window.berthMarker = 'still here'; return true");
    let go = controller.dir.path().join("go");
    let setup = format!(
        "#!/bin/sh\necho '<script>alert(1)</script>'\nwhile [ ! -e {} ] && [ -d {} ]; do sleep 0.1; done\n",
        go.display(),
        controller.dir.path().display()
    );
    let bundle = write_bundle(
        controller.dir.path(),
        "hello",
        "app = \"hello\"\nversion = \"1.0\"\n[target]\nlabels = { role = \"web\" }\n[setup]\nrun = [\"./setup.sh\"]\n",
        &[("setup.sh", &setup)],
    );
    let created = controller.deploy_detached(&bundle, &[]);
    assert_eq!(created.code, 0, "{}", created.stderr);
    let id = id_of(&created.json());
    let row = format!("tr[data-id=\"{id}\"]");
    browser.wait_for(&row, DEADLINE);
    browser.wait_for_text(&format!("{row} .status"), "setup_running", DEADLINE);
    assert!(
        browser.count(&format!("{row} button[data-action=cancel]")) == 1,
        "a running row can be canceled"
    );
    browser.screenshot("deployments-running");
    std::fs::write(&go, "").expect("let the setup finish");
    browser.wait_for_text(&format!("{row} .status"), "deployed", DEADLINE);
    assert_eq!(
        browser.execute("return window.berthMarker"),
        "still here",
        "the page was reloaded"
    );
    assert_eq!(browser.text(&format!("{row} td:nth-child(6)")), "web-1");
    assert!(
        browser.count(&format!("{row} button[data-action=redeploy]")) == 1,
        "an operator gets the actions of a deployed row"
    );

    // Its page: the stages, and the log with a line that looks like HTML
    // shown as text.
    browser.click(&format!("{row} a"));
    browser.wait_for_text("h1", "hello", DEADLINE);
    browser.wait_for_text("#log", "<script>alert(1)</script>", DEADLINE);
    assert_eq!(browser.count("#log script"), 0);
    assert_eq!(browser.text("#status"), "deployed");
    assert!(
        browser.text(".stages").contains("setup"),
        "{}",
        browser.text(".stages")
    );
    browser.wait_for_text("#log-state", "whole log", DEADLINE);
    browser.screenshot("deployment");
    browser.fill("#log-search", "nothing like this");
    assert_eq!(
        browser.execute(
            "return [...document.querySelectorAll('#log .line')].filter(l => !l.hidden).length"
        ),
        0,
        "find in the log hides what does not match"
    );
    browser.goto(&format!("{base}/"));
    browser.wait_for(&row, DEADLINE);

    // A value that looks like HTML is text.
    let (token, _) = http::user_token(&controller, "opal", "operator");
    let hostile = "<img src=x onerror=alert(1)>";
    let event = json!({
        "app": "billing", "version": "2.0", "environment": "prod",
        "status": "success", "deployed_by": hostile,
    });
    let reported = Api::new(&base, Some(&token)).post("/api/v1/deployment-events", &event);
    assert_eq!(reported.status, 200, "{}", reported.body);
    let billing = format!(
        "tr[data-id=\"{}\"]",
        reported.json()["id"].as_str().expect("id")
    );
    browser.wait_for(&billing, DEADLINE);
    assert_eq!(browser.text(&format!("{billing} td:nth-child(8)")), hostile);
    browser.goto(&format!("{base}/"));
    browser.wait_for(&billing, DEADLINE);
    assert_eq!(browser.text(&format!("{billing} td:nth-child(8)")), hostile);
    assert_eq!(browser.count("main img"), 0, "no element was made of it");
    browser.screenshot("deployments");

    // Search narrows the list; the filters stay in the link.
    browser.fill("#q", "billing");
    browser.press_enter("#q");
    wait_rows(&browser, 1);
    assert!(
        browser.current_url().contains("q=billing"),
        "{}",
        browser.current_url()
    );
    assert_eq!(browser.count(&row), 0);

    // Delete asks for the app name and says it cannot be undone.
    browser.goto(&format!("{base}/"));
    browser.wait_for(&row, DEADLINE);
    browser.click(&format!("{row} button[data-action=delete]"));
    let dialog = browser.wait_for_text("dialog", "cannot be undone", DEADLINE);
    assert!(dialog.contains("Type hello to confirm"), "{dialog}");
    assert_eq!(
        browser
            .attribute("dialog button.danger", "disabled")
            .as_deref(),
        Some("true")
    );
    browser.fill("#confirm-typed", "hello");
    assert_eq!(browser.attribute("dialog button.danger", "disabled"), None);
    browser.screenshot("deployments-delete");
    browser.click("dialog button:not(.danger)");
    assert_eq!(browser.count("dialog"), 0);

    browser.set_viewport(PHONE);
    if let Err(wide) = fits(&browser) {
        panic!("a sideways scroll on a phone: {wide}");
    }
    browser.screenshot("deployments-phone");
    browser.set_viewport(DESKTOP);
    let errors = browser.console_errors();
    assert_eq!(
        errors, refused,
        "console errors or CSP violations beside the refused sign-in"
    );

    // What runs where, the fleet and the audit log.
    browser.goto(&format!("{base}/status"));
    browser.wait_for_text("main", "hello", DEADLINE);
    assert!(
        browser.text("main").contains("web-1"),
        "{}",
        browser.text("main")
    );
    browser.screenshot("status");
    browser.goto(&format!("{base}/fleet"));
    browser.wait_for_text("main table", "web-1", DEADLINE);
    assert!(browser.text("main table").contains("online"));
    browser.screenshot("fleet");
    browser.goto(&format!("{base}/audit"));
    browser.wait_for_text("main table", "session.login", DEADLINE);
    browser.screenshot("audit");
    let errors = browser.console_errors();
    assert_eq!(errors, refused, "console errors on the read-only pages");

    // A viewer sees no action, and a change it forges is refused.
    browser.click("[data-action=sign-out]");
    browser.wait_for("#sign-in", DEADLINE);
    sign_in(&browser, &base, "vic");
    browser.wait_for(&row, DEADLINE);
    assert_eq!(browser.count("table.deployments button"), 0);
    let forged = browser.execute(&format!(
        "return fetch('/api/v1/deployments/{id}/redeploy', {{method: 'POST'}}).then(r => r.json()).then(j => j.error.code)"
    ));
    assert_eq!(forged, "auth/csrf-failed", "without the token");
    let forged = browser.execute(&format!(
        "const token = document.querySelector('meta[name=\"csrf-token\"]').content; \
         return fetch('/api/v1/deployments/{id}/redeploy', {{method: 'POST', headers: {{'X-CSRF-Token': token}}}}).then(r => r.json()).then(j => j.error.code)"
    ));
    assert_eq!(forged, "auth/permission-denied", "a viewer's change");
    browser.screenshot("deployments-viewer");
}

/// Waits until the table shows exactly `rows` rows.
fn wait_rows(browser: &Browser, rows: usize) {
    berth_tests::eventually_or(
        "the table's rows",
        100,
        std::time::Duration::from_millis(100),
        || (browser.count("tr[data-id]") == rows).then_some(()),
        || format!("{} rows", browser.count("tr[data-id]")),
    );
}
