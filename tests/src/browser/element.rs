//! What a test holds of a page: an element found by CSS selector, and a
//! cookie as the browser keeps it.

use std::future::Future;

use fantoccini::elements::Element as Handle;

use super::Browser;

/// An element found by CSS selector.
pub struct Element<'a> {
    pub(super) browser: &'a Browser,
    pub(super) css: String,
    pub(super) handle: Handle,
}

impl Element<'_> {
    fn run<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, fantoccini::error::CmdError>>,
    ) -> T {
        self.browser.run(&format!("{what} {:?}", self.css), call)
    }

    /// The rendered text.
    pub fn text(&self) -> String {
        self.run("read the text of", self.handle.text())
    }

    pub fn click(&self) {
        self.run("click", self.handle.click());
    }

    /// Clears the input and types `text` into it.
    pub fn fill(&self, text: &str) {
        self.run("clear", self.handle.clear());
        self.run("type into", self.handle.send_keys(text));
    }

    /// Presses Enter (in a form's input: submits it).
    pub fn press_enter(&self) {
        let enter: char = fantoccini::key::Key::Enter.into();
        self.run("press Enter in", self.handle.send_keys(&enter.to_string()));
    }

    /// An attribute as written in the HTML (`None` when absent).
    pub fn attribute(&self, name: &str) -> Option<String> {
        self.run(&format!("read {name} of"), self.handle.attr(name))
    }

    /// Whether it is shown (not `display: none`, not zero-sized).
    pub fn is_displayed(&self) -> bool {
        self.run("see whether it shows", self.handle.is_displayed())
    }
}

/// A cookie as the browser holds it.
#[derive(Debug, Clone)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub http_only: bool,
    pub secure: bool,
    /// `Strict`, `Lax` or `None`; absent when the cookie did not say.
    pub same_site: Option<String>,
    pub path: Option<String>,
}

impl From<fantoccini::cookies::Cookie<'static>> for Cookie {
    fn from(cookie: fantoccini::cookies::Cookie<'static>) -> Cookie {
        Cookie {
            name: cookie.name().to_string(),
            value: cookie.value().to_string(),
            http_only: cookie.http_only().unwrap_or(false),
            secure: cookie.secure().unwrap_or(false),
            same_site: cookie.same_site().map(|same_site| same_site.to_string()),
            path: cookie.path().map(str::to_string),
        }
    }
}
