//! The Users and tokens page and an agent's page in a real Chromium
//! against the real binaries: an admin adds a user, changes its role, makes
//! a setup link (shown once) and removes the user after typing its name;
//! a user makes an API token (shown once, and it works), then revokes it
//! (and it stops working); a viewer sees only its own tokens and a forged
//! change to a user is refused; an agent's page shows its host and its
//! live inspect. Screenshots at desktop and phone sizes; no console error.

use berth_tests::browser::session::{fits, sign_in, user};
use berth_tests::browser::{Browser, DESKTOP, PHONE};
use berth_tests::http::Api;
use berth_tests::{Agent, Controller, DEADLINE};

/// The value of the field a dialog shows a secret in, once.
fn shown_once(browser: &Browser) -> String {
    browser.wait_for("dialog #secret-once", DEADLINE);
    let value = browser.execute("return document.getElementById('secret-once').value");
    value.as_str().unwrap_or_default().to_string()
}

#[test]
fn admins_manage_people_and_everyone_their_tokens() {
    let Some(browser) = Browser::start("web_people::people") else {
        return;
    };
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "web-1", "role=web");
    user(&controller, "ada", "admin");
    user(&controller, "vic", "viewer");
    let base = controller.http_url.clone();
    sign_in(&browser, &base, "ada");

    // Users: add one, change its role, a setup link shown once.
    browser.click("nav a[href=\"/users\"]");
    browser.wait_for_text("h1", "Users and tokens", DEADLINE);
    browser.fill("#new-name", "pat");
    browser.fill("#new-email", "pat@example.com");
    browser.click("#add-user button[type=submit]");
    let pat = "tr[data-user=\"pat\"]";
    browser.wait_for(pat, DEADLINE);
    assert!(
        browser.text(pat).contains("not set"),
        "{}",
        browser.text(pat)
    );
    browser.execute(&format!(
        "document.querySelector('{} select').value = 'operator'; return true",
        pat.replace('\'', "\\'")
    ));
    browser.click(&format!("{pat} button[data-action=set-role]"));
    browser.wait_for_text(".toast", "pat is now operator", DEADLINE);
    let listed = controller.berth(&["users", "ls", "-o", "json"]).json();
    let pat_role = listed
        .as_array()
        .and_then(|users| users.iter().find(|user| user["name"] == "pat"))
        .map(|user| user["role"].clone());
    assert_eq!(pat_role, Some("operator".into()), "{listed}");

    browser.click(&format!("{pat} button[data-action=setup-link]"));
    let link = shown_once(&browser);
    assert!(
        link.starts_with("http") && link.contains("/setup"),
        "{link}"
    );
    browser.screenshot("users-setup-link");
    browser.click("dialog button.primary");
    assert_eq!(browser.count("dialog"), 0);
    assert!(
        !browser.text("body").contains(&link),
        "the link is gone from the page"
    );

    // A token made on the page works until it is revoked there.
    browser.fill("#token-name", "ci");
    browser.click("#new-token button[type=submit]");
    let token = shown_once(&browser);
    assert!(token.starts_with("bta_"), "{token}");
    let api = Api::new(&base, Some(&token));
    let me = api.get("/api/v1/whoami");
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(
        me.json()["principal"]
            .as_str()
            .map(|p| p.starts_with("ada")),
        Some(true),
        "{}",
        me.body
    );
    browser.click("dialog button.primary");
    let ci = "tr[data-name=\"ci\"]";
    browser.wait_for_text(&format!("{ci} .status"), "valid", DEADLINE);
    browser.screenshot("users");
    browser.click(&format!("{ci} button[data-action=revoke]"));
    browser.wait_for("dialog", DEADLINE);
    browser.click("dialog button.danger");
    browser.wait_for_text(&format!("{ci} .status"), "revoked", DEADLINE);
    assert_eq!(
        api.get("/api/v1/whoami").status,
        401,
        "a revoked token is refused"
    );

    // Removing asks for the name first.
    browser.click(&format!("{pat} button[data-action=remove]"));
    browser.wait_for_text("dialog", "Type pat to confirm", DEADLINE);
    assert_eq!(
        browser
            .attribute("dialog button.danger", "disabled")
            .as_deref(),
        Some("true")
    );
    browser.fill("#confirm-typed", "pat");
    browser.click("dialog button.danger");
    berth_tests::eventually_or(
        "pat's row to go",
        100,
        std::time::Duration::from_millis(100),
        || (browser.count(pat) == 0).then_some(()),
        || browser.text("main"),
    );
    let users = controller.berth(&["users", "ls", "-o", "json"]).json();
    assert!(!users.to_string().contains("\"pat\""), "{users}");

    browser.set_viewport(PHONE);
    if let Err(wide) = fits(&browser) {
        panic!("a sideways scroll on a phone: {wide}");
    }
    browser.screenshot("users-phone");
    browser.set_viewport(DESKTOP);

    // An agent's page: its host and what runs there, asked live.
    browser.click("nav a[href=\"/fleet\"]");
    browser.wait_for("a[href=\"/fleet/web-1\"]", DEADLINE);
    browser.click("a[href=\"/fleet/web-1\"]");
    browser.wait_for_text("h1", "web-1", DEADLINE);
    let main = browser.text("main");
    assert!(
        main.contains("online") && main.contains("role=web"),
        "{main}"
    );
    assert!(
        main.contains("Hostname") && main.contains("Inspect"),
        "{main}"
    );
    assert!(
        main.contains("No Caddy route") || main.contains("Routes"),
        "{main}"
    );
    browser.screenshot("agent");
    assert_eq!(browser.console_errors(), Vec::<String>::new());

    // A viewer: its own tokens only, and a forged change to a user refused.
    browser.click("[data-action=sign-out]");
    browser.wait_for("#sign-in", DEADLINE);
    sign_in(&browser, &base, "vic");
    assert_eq!(browser.text("nav a[href=\"/users\"]"), "Tokens");
    browser.click("nav a[href=\"/users\"]");
    browser.wait_for_text("h1", "API tokens", DEADLINE);
    assert_eq!(browser.count("#add-user"), 0);
    assert_eq!(browser.count("tr[data-user]"), 0);
    let forged = browser.execute(
        "const token = document.querySelector('meta[name=\"csrf-token\"]').content; \
         return fetch('/api/v1/users/vic', {method: 'PATCH', headers: {'X-CSRF-Token': token, 'Content-Type': 'application/json'}, body: '{\"role\": \"admin\"}'}).then(r => r.json()).then(j => j.error.code)",
    );
    assert_eq!(
        forged, "auth/permission-denied",
        "a viewer makes itself admin"
    );
    browser.screenshot("tokens-viewer");
}
