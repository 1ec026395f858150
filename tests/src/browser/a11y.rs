//! Accessibility checks of the page shown, with axe-core: `axe.min.js`
//! (pinned; `scripts/toolchain.sh` installs it into `target/axe`) is
//! injected through WebDriver's execute-script, which runs outside the
//! page's Content-Security-Policy, and `axe.run` checks the document
//! against the WCAG 2.0 and 2.1 A and AA rules and axe's best practices.
//! What it finds comes back as plain [`Violation`]s. And keyboard use:
//! a key pressed on whatever has focus, and what has it.

use std::fmt;
use std::path::{Path, PathBuf};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use serde_json::Value;

use super::Browser;
use crate::skip;

/// The rule sets every check runs.
const TAGS: [&str; 5] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"];

/// How many offending elements a [`Violation`] names.
const TARGETS: usize = 3;

/// Runs axe on the page and hands its violations, trimmed to plain values,
/// to WebDriver's callback (the last argument); a failure comes back as
/// `{error}`.
const RUN: &str = r#"
const [tags, shown, done] = arguments;
axe.run(document, { runOnly: tags, resultTypes: ["violations"] })
  .then((results) => done(results.violations.map((violation) => ({
    id: violation.id,
    impact: violation.impact || "",
    help: violation.help,
    nodes: violation.nodes.length,
    targets: violation.nodes.slice(0, shown).map((node) => node.target.flat().join(" ")),
    summary: (violation.nodes[0] && violation.nodes[0].failureSummary) || "",
  }))))
  .catch((err) => done({ error: String(err) }));
"#;

/// axe-core's script, read once for a test.
pub struct Axe {
    source: String,
}

impl Axe {
    /// Reads `axe.min.js`: `BERTH_AXE`, or the one `scripts/toolchain.sh`
    /// installs. Skips `test` (returns `None`) when it is missing, which
    /// under `BERTH_REQUIRE_ALL=1` is a failure.
    pub fn load(test: &str) -> Option<Axe> {
        let path = script();
        match std::fs::read_to_string(&path) {
            Ok(source) => Some(Axe { source }),
            Err(_) => {
                skip(
                    test,
                    &format!(
                        "axe-core at {} (scripts/toolchain.sh installs it; BERTH_AXE names another)",
                        path.display()
                    ),
                );
                None
            }
        }
    }

    /// Checks the page `browser` shows (injecting axe first when the page
    /// has none) and returns every violation found.
    pub fn check(&self, browser: &Browser) -> Vec<Violation> {
        let loaded = browser.execute("return typeof window.axe === 'object'");
        if loaded != true {
            let injected = browser.execute(&format!(
                "{}\n;return typeof window.axe === 'object'",
                self.source
            ));
            assert_eq!(injected, true, "axe-core did not load into the page");
        }
        let tags = TAGS.iter().map(|tag| Value::from(*tag)).collect();
        let found = browser.run(
            &format!("run axe on {}", browser.current_url()),
            browser
                .client()
                .execute_async(RUN, vec![Value::Array(tags), Value::from(TARGETS)]),
        );
        match found {
            Value::Array(violations) => violations.iter().map(Violation::from_json).collect(),
            other => panic!("axe failed on {}: {other}", browser.current_url()),
        }
    }
}

/// Where `axe.min.js` is looked for.
fn script() -> PathBuf {
    std::env::var_os("BERTH_AXE").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/axe/node_modules/axe-core/axe.min.js")
        },
        PathBuf::from,
    )
}

/// One rule the page breaks, as axe reports it.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The rule, e.g. `color-contrast`.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: String,
    /// What the rule asks for, in a sentence.
    pub help: String,
    /// How many elements break it.
    pub nodes: usize,
    /// CSS selectors of the first few of them.
    pub targets: Vec<String>,
    /// axe's account of what is wrong with the first one.
    pub summary: String,
}

impl Violation {
    fn from_json(value: &Value) -> Violation {
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_string();
        Violation {
            id: text("id"),
            impact: text("impact"),
            help: text("help"),
            nodes: value["nodes"].as_u64().unwrap_or_default() as usize,
            targets: value["targets"]
                .as_array()
                .map(|targets| {
                    targets
                        .iter()
                        .filter_map(|target| target.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            summary: text("summary"),
        }
    }

    /// Whether it is `serious` or `critical`: what the tests fail on.
    pub fn is_serious(&self) -> bool {
        matches!(self.impact.as_str(), "serious" | "critical")
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}; {} element(s): {}",
            self.id,
            self.impact,
            self.help,
            self.nodes,
            self.targets.join(", ")
        )?;
        if !self.summary.is_empty() {
            write!(f, "\n    {}", self.summary.replace('\n', "\n    "))?;
        }
        Ok(())
    }
}

impl Browser {
    /// Presses `key` (down, then up) on whatever has focus, as a person
    /// does: Tab moves focus, Escape closes a dialog.
    pub fn press(&self, key: Key) {
        let value: char = key.into();
        let keyboard = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value })
            .then(KeyAction::Up { value });
        self.run(
            &format!("press {key:?}"),
            self.client().perform_actions(keyboard),
        );
    }

    /// Whether the element with focus matches `css`.
    pub fn has_focus(&self, css: &str) -> bool {
        let css = Value::from(css).to_string();
        self.execute(&format!(
            "const e = document.activeElement; return Boolean(e && e.matches({css}))"
        )) == true
    }

    /// The element with focus, said briefly for failure messages: its tag,
    /// id, `data-action` and text.
    pub fn focused(&self) -> String {
        let said = self.execute(
            "const e = document.activeElement; if (!e) return 'nothing'; \
             const id = e.id ? `#${e.id}` : ''; \
             const action = e.dataset && e.dataset.action ? `[data-action=${e.dataset.action}]` : ''; \
             return `${e.tagName.toLowerCase()}${id}${action} ${JSON.stringify(e.textContent.trim().slice(0, 40))}`",
        );
        said.as_str().unwrap_or("?").to_string()
    }
}
