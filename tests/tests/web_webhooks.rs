//! The Webhooks page in a real Chromium against the real binaries: an
//! admin adds an endpoint for one event with the form (its signing secret
//! shown once, and it verifies what the receiver gets), sends a test
//! delivery and sees it in the page's delivery log, then removes the
//! endpoint; an operator has no Webhooks link and the page refuses it.
//! Screenshots at desktop and phone sizes; no console error.

use berth_tests::browser::session::{fits, sign_in, user};
use berth_tests::browser::{Browser, DESKTOP, PHONE};
use berth_tests::webhook_receiver::{Receiver, verify};
use berth_tests::{Controller, DEADLINE};

#[test]
fn admins_add_test_and_remove_webhooks_on_the_page() {
    let Some(browser) = Browser::start("web_webhooks::webhooks") else {
        return;
    };
    let controller = Controller::start();
    let receiver = Receiver::start();
    user(&controller, "ada", "admin");
    user(&controller, "otto", "operator");
    let base = controller.http_url.clone();
    sign_in(&browser, &base, "ada");

    browser.click("nav a[href=\"/webhooks\"]");
    browser.wait_for_text("h1", "Webhooks", DEADLINE);
    browser.fill("#hook-url", &receiver.url("/from-the-page?token=P4GE"));
    browser.fill("#hook-app", "web");
    browser.click("input[name=events][value=\"deployment.failed\"]");
    browser.screenshot("webhooks-add");
    browser.click("#add-webhook button[type=submit]");
    browser.wait_for("dialog #secret-once", DEADLINE);
    let secret = browser.execute("return document.getElementById('secret-once').value");
    let secret = secret.as_str().unwrap_or_default().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    browser.click("dialog button.primary");
    browser.wait_for("section.webhook", DEADLINE);
    let shown = browser.text("section.webhook");
    assert!(
        shown.contains("deployment.failed") && shown.contains("app web"),
        "{shown}"
    );
    let page = browser.execute("return document.documentElement.outerHTML");
    let page = page.as_str().unwrap_or_default();
    assert!(
        !page.contains("P4GE") && !page.contains(&secret),
        "the page shows the URL's query or the secret"
    );

    browser.click("section.webhook button[data-action=test]");
    let got = receiver.wait_until("the test delivery", DEADLINE, |r| !r.is_empty());
    verify(&secret, &got[0]).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(got[0].json()["type"], "webhook.test");
    assert_eq!(got[0].path, "/from-the-page?token=P4GE");
    browser.wait_for_text("table.deliveries", "webhook.test", DEADLINE);
    browser.wait_for_text("table.deliveries", "delivered", DEADLINE);
    browser.screenshot("webhooks");
    browser.set_viewport(PHONE);
    if let Err(wide) = fits(&browser) {
        panic!("the Webhooks page is wider than a phone: {wide}");
    }
    browser.screenshot("webhooks-phone");
    browser.set_viewport(DESKTOP);

    browser.click("section.webhook button[data-action=remove]");
    browser.click("dialog button.danger");
    berth_tests::eventually(
        "the endpoint removed",
        80,
        std::time::Duration::from_millis(250),
        || {
            let listed = controller.berth(&["webhook", "ls", "-o", "json"]).json();
            (listed == serde_json::json!([])).then_some(())
        },
    );
    assert_eq!(browser.console_errors(), Vec::<String>::new());

    // An operator has no link, and the page says why.
    browser.click("button[data-action=sign-out]");
    browser.wait_for("#sign-in", DEADLINE);
    sign_in(&browser, &base, "otto");
    assert_eq!(browser.count("nav a[href=\"/webhooks\"]"), 0);
    browser.goto(&format!("{base}/webhooks"));
    browser.wait_for_text("p.error", "auth/permission-denied", DEADLINE);
}
