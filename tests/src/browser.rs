//! A real headless Chromium for the web dashboard's end-to-end tests,
//! driven over WebDriver: a private `chromedriver` on a free loopback port
//! (a [`Running`] process, killed by PID on drop) and one session of
//! Debian's `/usr/bin/chromium` with a fresh profile in a temporary
//! directory.
//!
//! Tests are plain `#[test]` functions, so [`Browser`] owns a small tokio
//! runtime and every method blocks. Anything that waits for the page does
//! so under a deadline, polling; nothing sleeps a fixed time.

pub mod a11y;
mod driver;
mod element;
pub mod session;

use std::cell::RefCell;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::elements::Element as Handle;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::Value;

pub use element::{Cookie, Element};

use crate::{Running, procfs, skip};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How often a wait looks at the page again.
const POLL: Duration = Duration::from_millis(100);

/// Viewports: the desktop one every session starts with, and a phone's.
pub const DESKTOP: (u32, u32) = (1440, 900);
pub const PHONE: (u32, u32) = (390, 844);

/// One headless Chromium session.
pub struct Browser {
    test: String,
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Running,
    /// Every browser-log entry read so far (the log endpoint drains).
    log: RefCell<Vec<Value>>,
    /// Holds chromedriver's log and Chromium's profile.
    dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a session, or skips `test` (returns `None`)
    /// when Chromium or chromedriver is not installed.
    pub fn start(test: &str) -> Option<Browser> {
        let installed = Path::new(CHROMIUM).exists()
            && Command::new(CHROMEDRIVER)
                .arg("--version")
                .output()
                .is_ok_and(|out| out.status.success());
        if !installed {
            skip(
                test,
                "chromium and chromedriver (apt-get install chromium chromium-driver)",
            );
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-browser-")
            .tempdir()
            .expect("tempdir");
        let _ = std::fs::remove_file(failure_screenshot(test));
        let (driver, url) = driver::start(dir.path());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = runtime
            .block_on(
                ClientBuilder::new(connector)
                    .capabilities(driver::capabilities(&dir.path().join("profile")))
                    .connect(&url),
            )
            .unwrap_or_else(|err| panic!("no Chromium session: {err}\n{}", driver.log_tail()));
        let browser = Browser {
            test: test.to_string(),
            runtime,
            client: Some(client),
            driver,
            log: RefCell::default(),
            dir,
        };
        browser.set_viewport(DESKTOP);
        Some(browser)
    }
    fn client(&self) -> &Client {
        self.client.as_ref().expect("an open session")
    }

    /// Runs a WebDriver call to its end; panics naming `what` on error.
    fn run<T, E: std::fmt::Display>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, E>>,
    ) -> T {
        self.runtime
            .block_on(call)
            .unwrap_or_else(|err| panic!("{}: {what}: {err}", self.test))
    }

    /// Opens `url` and waits until the page has loaded.
    pub fn goto(&self, url: &str) {
        self.run(&format!("open {url}"), self.client().goto(url));
    }

    /// The URL of the page shown.
    pub fn current_url(&self) -> String {
        self.run("read the URL", self.client().current_url())
            .to_string()
    }

    /// The first element matching `css`; panics when there is none.
    pub fn find(&self, css: &str) -> Element<'_> {
        let handle = self.run(
            &format!("find {css:?} on {}", self.current_url()),
            self.client().find(Locator::Css(css)),
        );
        self.element(css, handle)
    }

    fn element(&self, css: &str, handle: Handle) -> Element<'_> {
        Element {
            browser: self,
            css: css.to_string(),
            handle,
        }
    }

    /// How many elements match `css` now.
    pub fn count(&self, css: &str) -> usize {
        self.run(
            &format!("count {css:?}"),
            self.client().find_all(Locator::Css(css)),
        )
        .len()
    }

    /// Waits until an element matches `css` and returns it; panics at the
    /// deadline.
    pub fn wait_for(&self, css: &str, deadline: Duration) -> Element<'_> {
        let handle = self.poll(&format!("{css:?} to appear"), deadline, async || {
            self.client().find(Locator::Css(css)).await.ok()
        });
        self.element(css, handle)
    }

    /// Waits until the text of an element matching `css` contains `needle`
    /// and returns that text; panics at the deadline, with what was seen.
    pub fn wait_for_text(&self, css: &str, needle: &str, deadline: Duration) -> String {
        self.poll(
            &format!("{css:?} to say {needle:?}"),
            deadline,
            async || {
                for element in self.client().find_all(Locator::Css(css)).await.ok()? {
                    if let Ok(text) = element.text().await
                        && text.contains(needle)
                    {
                        return Some(text);
                    }
                }
                None
            },
        )
    }

    /// Calls `check` every [`POLL`] until it returns `Some` or `deadline`
    /// passes (then panics naming `what`, the URL and the page's text).
    fn poll<T>(&self, what: &str, deadline: Duration, check: impl AsyncFn() -> Option<T>) -> T {
        let found = self.runtime.block_on(async {
            let end = Instant::now() + deadline;
            loop {
                if let Some(found) = check().await {
                    return Some(found);
                }
                if Instant::now() >= end {
                    return None;
                }
                tokio::time::sleep(POLL).await;
            }
        });
        found.unwrap_or_else(|| {
            let text = self
                .runtime
                .block_on(
                    self.client()
                        .execute("return document.body?.innerText", vec![]),
                )
                .unwrap_or_default();
            panic!(
                "{}: waited {deadline:?} for {what} on {}; the page says:\n{text}",
                self.test,
                self.current_url()
            )
        })
    }

    /// The text of the first element matching `css`.
    pub fn text(&self, css: &str) -> String {
        self.find(css).text()
    }

    /// Clicks the first element matching `css`.
    pub fn click(&self, css: &str) {
        self.find(css).click();
    }

    /// Replaces the value of the input matching `css` with `text`, typed.
    pub fn fill(&self, css: &str, text: &str) {
        self.find(css).fill(text);
    }

    /// Presses Enter in the element matching `css` (submits its form).
    pub fn press_enter(&self, css: &str) {
        self.find(css).press_enter();
    }

    /// An attribute of the first element matching `css`.
    pub fn attribute(&self, css: &str, name: &str) -> Option<String> {
        self.find(css).attribute(name)
    }

    /// Runs `js` (a function body: `return ...` gives the value) in the
    /// page.
    pub fn execute(&self, js: &str) -> Value {
        self.run("run a script", self.client().execute(js, vec![]))
    }

    /// Resizes the window (the page's viewport is smaller: see
    /// [`Browser::set_viewport`]).
    pub fn set_window_size(&self, (width, height): (u32, u32)) {
        self.run(
            &format!("resize to {width}x{height}"),
            self.client().set_window_size(width, height),
        );
    }

    /// Resizes the window so the page's viewport (`innerWidth` x
    /// `innerHeight`) is exactly `size`, e.g. [`PHONE`] or [`DESKTOP`].
    pub fn set_viewport(&self, size: (u32, u32)) {
        self.set_window_size(size);
        let seen = self.viewport();
        if seen != size {
            // Headless Chromium still draws a window frame around the page.
            let frame = |want: u32, got: u32| (want + want).saturating_sub(got);
            self.set_window_size((frame(size.0, seen.0), frame(size.1, seen.1)));
        }
        let seen = self.viewport();
        assert_eq!(seen, size, "{}: the viewport after resizing", self.test);
    }

    /// The page's viewport: `innerWidth` x `innerHeight`.
    pub fn viewport(&self) -> (u32, u32) {
        let seen = self.execute("return [innerWidth, innerHeight]");
        let side = |at: usize| {
            seen[at]
                .as_u64()
                .and_then(|px| u32::try_from(px).ok())
                .unwrap_or_else(|| panic!("a viewport, not {seen}"))
        };
        (side(0), side(1))
    }

    /// The cookies the browser sends to the page shown (HttpOnly ones
    /// included, which the page's scripts cannot see).
    pub fn cookies(&self) -> Vec<Cookie> {
        self.run("read cookies", self.client().get_all_cookies())
            .into_iter()
            .map(Cookie::from)
            .collect()
    }

    /// Every browser-log entry so far (`{level, source, message,
    /// timestamp}`): console messages, failed loads, CSP violations.
    pub fn console(&self) -> Vec<Value> {
        let fresh = self.run(
            "read the browser log",
            self.client().issue_cmd(driver::BrowserLog),
        );
        if let Value::Array(entries) = fresh {
            self.log.borrow_mut().extend(entries);
        }
        self.log.borrow().clone()
    }

    /// The messages of the `SEVERE` browser-log entries so far: script
    /// errors, failed loads and Content-Security-Policy violations.
    pub fn console_errors(&self) -> Vec<String> {
        self.console()
            .into_iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| {
                let source = entry["source"].as_str().unwrap_or("?");
                format!("{source}: {}", entry["message"].as_str().unwrap_or(""))
            })
            .collect()
    }

    /// Saves a PNG of the viewport as `target/screenshots/NAME.png` and
    /// returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.run("take a screenshot", self.client().screenshot());
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("create the screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    /// The living processes of this session's Chromium: every one given
    /// its temporary directory (the browser, its children, and the crash
    /// handlers, which leave the process tree).
    pub fn browser_pids(&self) -> Vec<u32> {
        procfs::mentioning(&self.dir.path().to_string_lossy())
    }

    /// The temporary directory holding chromedriver's log and Chromium's
    /// profile.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// chromedriver's log so far, for failure messages.
    pub fn driver_log(&self) -> String {
        self.driver.log_tail()
    }
}

/// `target/screenshots`, beside the binaries' directory (so under
/// `CARGO_TARGET_DIR` when it is set).
pub fn screenshot_dir() -> PathBuf {
    let bin_dir = crate::bin_dir();
    bin_dir.parent().unwrap_or(&bin_dir).join("screenshots")
}

/// Where a failing test's last view is saved.
fn failure_screenshot(test: &str) -> PathBuf {
    screenshot_dir().join(format!("{}-failure.png", test.replace("::", "-")))
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(client) = &self.client
        {
            let png = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), client.screenshot()).await
            });
            let path = failure_screenshot(&self.test);
            if let Ok(Ok(png)) = png
                && std::fs::create_dir_all(screenshot_dir()).is_ok()
                && std::fs::write(&path, png).is_ok()
            {
                eprintln!("{}: its last view is {}", self.test, path.display());
            }
        }
        if let Some(client) = self.client.take() {
            // Ends the session: chromedriver quits Chromium.
            let closed = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(20), client.close()).await
            });
            if !matches!(closed, Ok(Ok(()))) {
                eprintln!("{}: the WebDriver session did not close cleanly", self.test);
            }
        }
        self.driver.kill9();
        // Whatever outlived the session (a crash, a hung quit).
        for pid in self.browser_pids() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}
