//! The Apps pages in a real Chromium against the real binaries: apps
//! deployed with the CLI listed with their environments; two users rating
//! one app from its page (the average following each rating without a
//! reload, one rating per user, a second rating replacing the first, a
//! rating taken back); the list showing the average and the caller's own;
//! the same figures through the HTTP API; a missing app's page saying so.
//! Screenshots at desktop and phone sizes; no console error.

use berth_tests::browser::session::{fits, sign_in, user};
use berth_tests::browser::{Browser, DESKTOP, PHONE};
use berth_tests::{Agent, Controller, DEADLINE};

fn manifest(app: &str, environment: &str) -> String {
    format!(
        "app = \"{app}\"\nenvironment = \"{environment}\"\nversion = \"1.0\"\n[target]\nlabels = {{ role = \"web\" }}\n[setup]\nrun = [\"true\"]\n"
    )
}

/// Chooses `stars` on an app's page and waits for the average to say `figure`.
fn rate(browser: &Browser, stars: u8, figure: &str) {
    browser.click(&format!("label[for=\"stars-{stars}\"]"));
    browser.wait_for_text("#rating-average", figure, DEADLINE);
}

#[test]
fn people_rate_apps_and_the_lists_show_the_average() {
    let Some(browser) = Browser::start("web_apps::ratings") else {
        return;
    };
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "web-1", "role=web");
    controller.deploy_ok("hello", &manifest("hello", "production"));
    controller.deploy_ok("hello-staging", &manifest("hello", "staging"));
    controller.deploy_ok("billing", &manifest("billing", "production"));
    user(&controller, "olga", "operator");
    user(&controller, "vic", "viewer");
    let base = controller.http_url.clone();

    sign_in(&browser, &base, "olga");
    browser.click("nav a[href=\"/apps\"]");
    browser.wait_for_text("h1", "Apps", DEADLINE);
    let hello = "tr[data-app=\"hello\"]";
    let row = browser.text(hello);
    assert!(
        row.contains("production") && row.contains("staging") && row.contains("not rated"),
        "{row}"
    );
    assert_eq!(browser.count("tr[data-app]"), 2);

    browser.click(&format!("{hello} a"));
    browser.wait_for_text("h1", "hello", DEADLINE);
    assert!(
        browser.text("main").contains("In staging"),
        "{}",
        browser.text("main")
    );
    browser.execute("window.berthMarker = 'still here'; return true");
    rate(&browser, 4, "4.0 (1)");
    rate(&browser, 5, "5.0 (1)");
    assert_eq!(
        browser.execute("return window.berthMarker"),
        "still here",
        "the page was reloaded"
    );
    browser.screenshot("app");
    // Its history in one environment is the Deployments page, filtered.
    browser.click("a[href=\"/?app=hello&environment=staging\"]");
    browser.wait_for_text(".only-app", "App hello", DEADLINE);
    berth_tests::eventually_or(
        "one row",
        100,
        std::time::Duration::from_millis(100),
        || (browser.count("tr[data-id]") == 1).then_some(()),
        || browser.text("main"),
    );
    assert!(
        browser.text("tr[data-id]").contains("staging"),
        "{}",
        browser.text("tr[data-id]")
    );
    browser.goto(&format!("{base}/apps/hello"));
    browser.wait_for_text("#rating-average", "5.0 (1)", DEADLINE);

    // Its environments: made by the first deploys, changed from the page.
    let staging = ".environment[data-environment=\"staging\"]";
    assert!(
        browser.text(staging).contains("development"),
        "{}",
        browser.text(staging)
    );
    browser.click(&format!("{staging} details.env-edit summary"));
    browser.fill("#var-name-staging", "LOG_LEVEL");
    browser.fill("#var-value-staging", "<debug>");
    browser.click(&format!("{staging} form.set-var button"));
    browser.wait_for(&format!("{staging} tr[data-var=\"LOG_LEVEL\"]"), DEADLINE);
    assert_eq!(
        browser.text(&format!(
            "{staging} tr[data-var=\"LOG_LEVEL\"] td:nth-child(2)"
        )),
        "<debug>"
    );
    browser.click(&format!("{staging} details.env-edit summary"));
    browser.execute("document.getElementById('kind-staging').value = 'staging'; document.getElementById('protected-staging').checked = true; return true");
    browser.click(&format!("{staging} form.env-settings button"));
    browser.wait_for_text(staging, "protected: 1 approval needed", DEADLINE);
    let record = controller
        .berth(&["env", "show", "hello/staging", "-o", "json"])
        .json();
    assert_eq!(
        (record["type"].as_str(), record["protected"].as_bool()),
        (Some("staging"), Some(true)),
        "{record:#}"
    );
    assert_eq!(record["vars"]["LOG_LEVEL"], "<debug>");
    // An operator may not loosen it again: the API says so on the page.
    browser.click(&format!("{staging} details.env-edit summary"));
    browser.execute("document.getElementById('protected-staging').checked = false; return true");
    browser.click(&format!("{staging} form.env-settings button"));
    browser.wait_for_text(".toast", "admin", DEADLINE);
    // A secret set from the page: listed by name and version, its value
    // nowhere on the page, and the same in `berth secret ls`.
    let value = "s3cret-from-the-page";
    browser.fill("#secret-name-staging", "DB_PASSWORD");
    browser.fill("#secret-value-staging", value);
    browser.click(&format!("{staging} form.set-secret button"));
    browser.wait_for(
        &format!("{staging} tr[data-secret=\"DB_PASSWORD\"]"),
        DEADLINE,
    );
    assert_eq!(
        browser.text(&format!(
            "{staging} tr[data-secret=\"DB_PASSWORD\"] td:nth-child(2)"
        )),
        "1"
    );
    let page = browser.execute("return document.documentElement.outerHTML");
    assert!(
        !page.as_str().unwrap_or_default().contains(value),
        "the value is not on the page"
    );
    let listed = controller
        .berth(&["secret", "ls", "hello/staging", "-o", "json"])
        .printed();
    assert!(
        listed.to_string().contains("DB_PASSWORD") && !listed.to_string().contains(value),
        "{listed}"
    );
    browser.screenshot("app-environments");

    browser.click("[data-action=sign-out]");
    browser.wait_for("#sign-in", DEADLINE);
    sign_in(&browser, &base, "vic");
    browser.goto(&format!("{base}/apps/hello"));
    browser.wait_for_text("#rating-average", "5.0 (1)", DEADLINE);
    assert_eq!(
        browser.count("form.set-var"),
        0,
        "a viewer changes no environment"
    );
    rate(&browser, 2, "3.5 (2)");
    let stars = browser.attribute("#rating-average .stars", "aria-label");
    assert_eq!(stars.as_deref(), Some("3.5 of 5 stars from 2 ratings"));

    browser.goto(&format!("{base}/apps"));
    browser.wait_for(hello, DEADLINE);
    let row = browser.text(hello);
    assert!(row.contains("3.5 (2)") && row.contains("2 ★"), "{row}");
    browser.screenshot("apps");
    let listed = controller.berth(&["apps", "ls", "-o", "json"]).json();
    let average = listed
        .as_array()
        .and_then(|apps| apps.iter().find(|app| app["app"] == "hello"))
        .map(|app| app["rating"]["average"].clone());
    assert_eq!(average, Some(serde_json::json!(3.5)), "{listed}");

    // Taken back: the average is olga's alone again.
    browser.goto(&format!("{base}/apps/hello"));
    browser.wait_for("#rate-clear", DEADLINE);
    browser.click("#rate-clear");
    browser.wait_for_text("#rating-average", "5.0 (1)", DEADLINE);
    assert_eq!(browser.count("input[name=stars]:checked"), 0);

    browser.set_viewport(PHONE);
    if let Err(wide) = fits(&browser) {
        panic!("a sideways scroll on a phone: {wide}");
    }
    browser.screenshot("app-phone");
    browser.set_viewport(DESKTOP);

    browser.goto(&format!("{base}/apps/nosuch"));
    browser.wait_for_text("h1", "No such app", DEADLINE);
    assert!(
        browser.text("main").contains("app/not-found"),
        "{}",
        browser.text("main")
    );
    let errors = browser.console_errors();
    let expected = |error: &String| {
        (error.contains("/environments/staging") && error.contains("403"))
            || (error.contains("/apps/nosuch") && error.contains("404"))
    };
    assert!(
        errors.len() == 2 && errors.iter().all(expected),
        "only the refused loosening's 403 and the missing page's 404: {errors:#?}"
    );
}
