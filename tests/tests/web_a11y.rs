//! The dashboard's accessibility in a real Chromium, checked by axe-core
//! (WCAG 2.0 and 2.1, A and AA, and axe's best practices): the sign-in
//! page, a setup link's page, every page the navigation links to (walked,
//! so a page added later is checked too), a finished and a failed
//! deployment's pages and an agent's page, as an admin and as a viewer, at
//! desktop and phone sizes, with deployments of several statuses shown.
//! Every violation is printed; a serious or critical one fails. A probe
//! first shows that axe finds what it should. And the keyboard: the first
//! Tab from the top reaches "Skip to content", which skips the
//! navigation; a confirmation dialog opened from the keyboard takes
//! focus, passes axe, closes on Escape and gives focus back to its button.

use std::path::Path;
use std::time::Instant;

use berth_tests::browser::a11y::Axe;
use berth_tests::browser::session::{sign_in, user};
use berth_tests::browser::{Browser, DESKTOP, PHONE};
use berth_tests::{Agent, Controller, DEADLINE, id_of, write_bundle};
use fantoccini::key::Key;

const TEST: &str = "web_a11y::pages";

/// What axe found on the pages checked so far.
struct Findings<'a> {
    browser: &'a Browser,
    axe: &'a Axe,
    /// Every violation, with the page, the user and the size it was on.
    all: Vec<String>,
    /// How many of them are serious or critical.
    serious: usize,
    /// How many checks ran (a page at one size is one).
    checks: usize,
    /// Linked pages that are not pages of the dashboard (no `main`): a
    /// link to a page not made yet, which answers 404.
    unchecked: Vec<String>,
}

impl Findings<'_> {
    /// Checks the page shown at desktop and at phone size; `who` names
    /// the signed-in user.
    fn check(&mut self, who: &str) {
        let url = self.browser.current_url();
        let page = url.splitn(4, '/').nth(3).unwrap_or_default();
        if self.browser.count("main#main, body > main") == 0 {
            self.unchecked.push(format!("/{page}"));
            return;
        }
        for (size, name) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
            self.browser.set_viewport(size);
            for violation in self.axe.check(self.browser) {
                self.serious += usize::from(violation.is_serious());
                self.all
                    .push(format!("/{page} ({who}, {name}): {violation}"));
            }
            self.checks += 1;
        }
        self.browser.set_viewport(DESKTOP);
    }

    /// Prints every violation and fails on a serious or critical one;
    /// returns the linked pages that were not pages of the dashboard.
    fn assert_no_serious(self) -> Vec<String> {
        let Findings {
            all,
            serious,
            checks,
            mut unchecked,
            ..
        } = self;
        eprintln!(
            "axe: {} violation(s), {serious} serious or critical, in {checks} checks:\n{}",
            all.len(),
            all.join("\n")
        );
        unchecked.sort();
        unchecked.dedup();
        if !unchecked.is_empty() {
            eprintln!("linked, but not pages of the dashboard: {unchecked:?}");
        }
        assert_eq!(serious, 0, "{}", all.join("\n"));
        // The two signed-out pages, and for each user at least five linked
        // pages and the three named ones, at two sizes each.
        assert!(checks >= 2 * (2 + 2 * (5 + 3)), "only {checks} checks ran");
        unchecked
    }

    /// Signs in as `who`, checks every page the navigation links to and
    /// then `more`, and signs out.
    fn walk(&mut self, base: &str, who: &str, more: &[String]) {
        let browser = self.browser;
        sign_in(browser, base, who);
        let linked = browser.execute(
            "return [...new Set([...document.querySelectorAll('nav a')].map((a) => a.getAttribute('href')))]",
        );
        let linked: Vec<String> = linked
            .as_array()
            .expect("the navigation's links")
            .iter()
            .filter_map(|href| href.as_str().map(str::to_string))
            .collect();
        assert!(linked.len() >= 5, "the navigation links to {linked:?}");
        for path in linked.iter().chain(more) {
            browser.goto(&format!("{base}{path}"));
            browser.wait_for("body", DEADLINE);
            if browser.count("#log-filters") == 1 {
                // A settled deployment's whole log is on its page.
                browser.wait_for_text("#log-state", "whole log", DEADLINE);
            }
            self.check(who);
        }
        browser.click("[data-action=sign-out]");
        browser.wait_for("#sign-in", DEADLINE);
    }
}

/// The checker finds what it should: an input with no label and text of
/// too little contrast, added to the sign-in page, are reported.
fn probe(browser: &Browser, axe: &Axe, base: &str) {
    browser.goto(&format!("{base}/login"));
    browser.wait_for("#sign-in", DEADLINE);
    browser.execute(
        "const input = document.createElement('input'); \
         const faint = document.createElement('p'); \
         faint.textContent = 'faint'; faint.style.color = '#c8c8c8'; \
         document.querySelector('main').append(input, faint); return true",
    );
    let found: Vec<String> = axe
        .check(browser)
        .into_iter()
        .map(|violation| violation.id)
        .collect();
    assert!(
        found.iter().any(|id| id == "label") && found.iter().any(|id| id == "color-contrast"),
        "axe missed a bad input or faint text: {found:?}"
    );
}

/// Deploys a script app whose setup runs `script`, detached; returns its
/// id.
fn deploy(controller: &Controller, app: &str, version: &str, script: &str) -> String {
    let bundle = write_bundle(
        controller.dir.path(),
        &format!("{app}-{version}"),
        &format!(
            "app = \"{app}\"\nversion = \"{version}\"\n[target]\nlabels = {{ role = \"web\" }}\n[setup]\nrun = [\"./setup.sh\"]\n"
        ),
        &[("setup.sh", &format!("#!/bin/sh\n{script}\n"))],
    );
    let created = controller.deploy_detached(&bundle, &[]);
    assert_eq!(created.code, 0, "{}", created.stderr);
    id_of(&created.json())
}

/// Deploys and waits until the deployment settles in `status`.
fn settled(
    controller: &Controller,
    app: &str,
    version: &str,
    script: &str,
    status: &str,
) -> String {
    let id = deploy(controller, app, version, script);
    let deployment = controller.wait_quiet(&id);
    assert_eq!(deployment["status"], status, "{deployment:#}");
    id
}

/// Deployments of every kind of status colour: deployed, superseded,
/// failed, canceled, and one still running (until `go` exists). Returns
/// the deployed and the failed one.
fn deployments(controller: &Controller, go: &Path) -> (String, String) {
    settled(controller, "hello", "1.0", "echo one", "deployed");
    let done = settled(controller, "hello", "2.0", "echo two", "deployed");
    let failed = settled(
        controller,
        "broken",
        "1.0",
        "echo oops >&2; exit 3",
        "failed",
    );
    let slow = deploy(controller, "slow", "1.0", "sleep 60");
    controller.berth(&["cancel", &slow]).ok();
    let canceled = controller.wait_quiet(&slow);
    assert_eq!(canceled["status"], "canceled", "{canceled:#}");
    // Ends with the test's directory too, so no script outlives the test.
    let wait = format!(
        "while [ ! -e {} ] && [ -d {} ]; do sleep 0.1; done",
        go.display(),
        controller.dir.path().display()
    );
    deploy(controller, "waiting", "1.0", &wait);
    (done, failed)
}

/// From the top of the Deployments page, the first Tab reaches "Skip to
/// content", shown, and Enter on it skips the navigation. A delete
/// confirmation opened from the keyboard takes focus, passes axe, and
/// closes on Escape, giving focus back to the Delete button.
fn keyboard(browser: &Browser, axe: &Axe, base: &str, deployment: &str) {
    browser.goto(&format!("{base}/"));
    browser.wait_for("table.deployments", DEADLINE);
    browser.press(Key::Tab);
    assert!(
        browser.has_focus("a.skip"),
        "the first Tab reaches {}",
        browser.focused()
    );
    let left = browser.execute("return document.activeElement.getBoundingClientRect().left");
    assert!(
        left.as_f64().is_some_and(|left| left >= 0.0),
        "the focused skip link is on screen, not at {left}"
    );
    browser.press(Key::Enter);
    browser.press(Key::Tab);
    assert!(
        browser.has_focus("main a"),
        "Tab after the skip link reaches {}, not the page's first link",
        browser.focused()
    );

    let delete = format!("tr[data-id=\"{deployment}\"] button[data-action=delete]");
    browser.execute(&format!(
        "document.querySelector('{}').focus(); return true",
        delete.replace('"', "\\\"")
    ));
    assert!(browser.has_focus(&delete), "{}", browser.focused());
    browser.press(Key::Enter);
    browser.wait_for("dialog[open]", DEADLINE);
    assert!(
        browser.has_focus("dialog[open] *"),
        "the dialog has focus, not {}",
        browser.focused()
    );
    let serious: Vec<String> = axe
        .check(browser)
        .iter()
        .filter(|violation| violation.is_serious())
        .map(ToString::to_string)
        .collect();
    assert!(
        serious.is_empty(),
        "with the dialog open:\n{}",
        serious.join("\n")
    );
    browser.screenshot("a11y-delete-dialog");
    browser.press(Key::Escape);
    berth_tests::eventually_or(
        "Escape to close the dialog",
        50,
        std::time::Duration::from_millis(100),
        || (browser.count("dialog") == 0).then_some(()),
        || browser.text("body"),
    );
    assert!(
        browser.has_focus(&delete),
        "after Escape the focus is on {}, not the Delete button",
        browser.focused()
    );
}

#[test]
fn every_page_passes_axe_and_works_from_the_keyboard() {
    let Some(browser) = Browser::start(TEST) else {
        return;
    };
    let Some(axe) = Axe::load(TEST) else {
        return;
    };
    let started = Instant::now();
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "web-1", "role=web");
    user(&controller, "ada", "admin");
    user(&controller, "vic", "viewer");
    controller
        .berth(&["users", "add", "pat", "--role", "viewer"])
        .ok();
    let link = controller.berth(&["users", "setup-link", "pat"]).ok();
    let go = controller.dir.path().join("go");
    let (done, failed) = deployments(&controller, &go);
    let base = controller.http_url.clone();

    let mut findings = Findings {
        browser: &browser,
        axe: &axe,
        all: Vec::new(),
        serious: 0,
        checks: 0,
        unchecked: Vec::new(),
    };
    probe(&browser, &axe, &base);
    for page in [format!("{base}/login"), link.trim().to_string()] {
        browser.goto(&page);
        browser.wait_for("h1", DEADLINE);
        findings.check("signed out");
    }
    let more = [
        format!("/deployments/{done}"),
        format!("/deployments/{failed}"),
        "/fleet/web-1".to_string(),
    ];
    findings.walk(&base, "ada", &more);
    findings.walk(&base, "vic", &more);
    let not_pages = findings.assert_no_serious();

    sign_in(&browser, &base, "ada");
    keyboard(&browser, &axe, &base, &failed);
    // Beside the 404s of those linked pages, nothing: axe ran outside the
    // pages' policy, and broke none of it.
    let errors: Vec<String> = browser
        .console_errors()
        .into_iter()
        .filter(|error| {
            !not_pages.iter().any(|path| {
                error.starts_with(&format!("network: {base}{path} - ")) && error.contains(" 404 ")
            })
        })
        .collect();
    assert_eq!(
        errors,
        Vec::<String>::new(),
        "console errors or CSP violations"
    );
    std::fs::write(&go, "").expect("let the running deployment finish");
    eprintln!("{TEST} took {:?}", started.elapsed());
}
