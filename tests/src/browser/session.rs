//! Signing people in to the dashboard in a test: a user with a web
//! password made through the CLI, a sign-in through the page as a person
//! does it, and the layout check every page gets at phone size.

use super::Browser;
use crate::{Controller, DEADLINE};

/// The web password every test user gets.
pub const PASSWORD: &str = "correct horse battery";

/// Adds user `name` with `role` and sets its web password.
pub fn user(controller: &Controller, name: &str, role: &str) {
    controller
        .berth(&["users", "add", name, "--role", role])
        .ok();
    let set = controller.berth_stdin(&["users", "set-password", name], &format!("{PASSWORD}\n"));
    assert_eq!(set.code, 0, "{}", set.stderr);
}

/// Opens the dashboard, is sent to sign in, and signs in as `name`.
pub fn sign_in(browser: &Browser, base: &str, name: &str) {
    browser.goto(&format!("{base}/"));
    browser.wait_for("#sign-in", DEADLINE);
    assert!(
        browser.current_url().ends_with("/login?next=%2F"),
        "{}",
        browser.current_url()
    );
    browser.fill("#name", name);
    browser.fill("#password", PASSWORD);
    browser.click("#sign-in button[type=submit]");
    browser.wait_for_text("h1", "Deployments", DEADLINE);
}

/// Whether the page fits the viewport's width (no sideways scroll of the
/// page itself; a table scrolls in its own box): `Err` names the widest
/// elements that stick out.
pub fn fits(browser: &Browser) -> Result<(), String> {
    let found = browser.execute(
        "if (document.documentElement.scrollWidth <= innerWidth) return ''; \
         return [...document.querySelectorAll('body *')] \
           .filter((e) => e.getBoundingClientRect().right > innerWidth && !e.closest('.scroll')) \
           .slice(-5).map((e) => `${e.tagName.toLowerCase()}.${e.className} (${Math.round(e.getBoundingClientRect().right)} px)`).join(', ')",
    );
    match found.as_str() {
        Some("") => Ok(()),
        other => Err(format!(
            "the page is wider than {} px: {}",
            browser.viewport().0,
            other.unwrap_or("?")
        )),
    }
}
