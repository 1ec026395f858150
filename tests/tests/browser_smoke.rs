//! The real-browser harness (`berth_tests::browser`) against a real
//! controller: a setup link opened in headless Chromium sets bob's
//! password and signs the browser in, at desktop and phone sizes, with
//! the session cookie's attributes as the browser holds them, no console
//! error or CSP violation, and no Chromium process left behind.

use std::time::Duration;

use berth_tests::browser::session::{PASSWORD, fits};
use berth_tests::browser::{Browser, DESKTOP, PHONE};
use berth_tests::{Controller, DEADLINE, eventually_or, procfs};

#[test]
fn a_setup_link_in_chromium_sets_the_password_and_signs_in() {
    let Some(browser) = Browser::start("browser_smoke::setup_link") else {
        return;
    };
    let controller = Controller::start();
    controller
        .berth(&["users", "add", "bob", "--role", "operator"])
        .ok();
    let link = controller.berth(&["users", "setup-link", "bob"]).ok();
    let link = link.trim();
    assert!(
        link.starts_with(&format!("{}/setup?token=", controller.http_url)),
        "{link}"
    );

    browser.goto(link);
    browser.wait_for_text("h1", "Set your password", DEADLINE);
    assert_eq!(browser.text("main strong"), "bob");
    assert_eq!(browser.count("input[type=password]"), 2);
    assert_eq!(
        browser.attribute("#password", "autocomplete").as_deref(),
        Some("new-password")
    );
    assert_eq!(browser.viewport(), DESKTOP);
    assert_eq!(fits(&browser), Ok(()));
    browser.screenshot("setup-link");
    browser.set_viewport(PHONE);
    assert_eq!(fits(&browser), Ok(()), "a sideways scroll on a phone");
    browser.screenshot("setup-link-phone");

    // Typed and submitted on the phone.
    browser.fill("#password", PASSWORD);
    browser.fill("#confirm", PASSWORD);
    browser.click("button[type=submit]");
    browser.wait_for_text("h1", "Password set", DEADLINE);
    let said = browser.text("main");
    assert!(said.contains("bob") && said.contains("signed in"), "{said}");
    assert_eq!(fits(&browser), Ok(()), "a sideways scroll on a phone");
    browser.screenshot("setup-done-phone");
    browser.set_viewport(DESKTOP);
    browser.screenshot("setup-done");

    // The session cookie as Chromium keeps it: on http://127.0.0.1 a
    // Secure cookie is kept (a loopback address is a secure context).
    let cookies = browser.cookies();
    let session = cookies
        .iter()
        .find(|cookie| cookie.name == "berth_session")
        .unwrap_or_else(|| {
            panic!(
                "Chromium did not keep the berth_session cookie on http://127.0.0.1: {cookies:?}"
            )
        });
    assert!(session.http_only, "{session:?}");
    assert!(session.secure, "{session:?}");
    assert_eq!(session.same_site.as_deref(), Some("Strict"), "{session:?}");
    let visible = browser.execute("return document.cookie");
    assert!(
        !visible.as_str().unwrap_or("").contains("berth_session"),
        "scripts see the session cookie: {visible}"
    );
    // And it signs the browser in.
    browser.goto(&format!("{}/api/v1/whoami", controller.http_url));
    let whoami = browser.wait_for_text("body", "bob", DEADLINE);
    assert!(whoami.contains("operator"), "{whoami}");

    let errors = browser.console_errors();
    assert!(
        errors.is_empty(),
        "console errors or CSP violations: {errors:#?}"
    );
    // The check above can fail: a style the page's policy does not allow
    // is reported.
    browser.goto(link);
    browser.execute(
        "const style = document.createElement('style'); \
         style.textContent = 'body{color:red}'; document.head.append(style);",
    );
    eventually_or(
        "a CSP violation in the browser log",
        100,
        Duration::from_millis(100),
        || {
            browser
                .console_errors()
                .into_iter()
                .find(|error| error.contains("Content Security Policy"))
        },
        || format!("{:#?}", browser.console()),
    );

    let chromium = browser.browser_pids();
    assert!(!chromium.is_empty(), "no Chromium process found");
    let dir = browser.dir().to_string_lossy().into_owned();
    drop(browser);
    // Killed ones may take a moment to be gone.
    eventually_or(
        "no Chromium process left behind",
        50,
        Duration::from_millis(100),
        || procfs::mentioning(&dir).is_empty().then_some(()),
        || format!("{:?}", procfs::mentioning(&dir)),
    );
}
