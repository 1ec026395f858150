//! Recognises a script refused by the agent's systemd sandbox (the packaged
//! unit's `ProtectSystem=strict`, `NoNewPrivileges=yes`, no capabilities)
//! in a failed command's last output lines, so the stage's failure message,
//! which `berth deploy` prints, names the cause and the drop-in that lifts
//! it instead of only `exited with code 1`. [`Watch`] passes every line on
//! to the task's sink and keeps the last few; [`hint`] reads them.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::shell::{LineSink, Stream};

/// Output lines kept for [`Watch::explain`].
const KEPT_LINES: usize = 20;
/// Where the berth-agent package installs the example drop-ins.
const EXAMPLES: &str = "/usr/share/doc/berth-agent/examples";

/// A [`LineSink`] that forwards everything to `inner` and remembers the
/// command's last lines.
pub struct Watch<'a> {
    inner: &'a dyn LineSink,
    last: Mutex<VecDeque<String>>,
}

impl<'a> Watch<'a> {
    pub fn new(inner: &'a dyn LineSink) -> Watch<'a> {
        Watch {
            inner,
            last: Mutex::new(VecDeque::with_capacity(KEPT_LINES)),
        }
    }

    fn keep(&self, line: &str) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.len() == KEPT_LINES {
            last.pop_front();
        }
        last.push_back(line.to_string());
    }

    /// `message`, followed by the sandbox's part in the failure when the
    /// last lines show one and the agent runs as a systemd service.
    pub fn explain(&self, message: String) -> String {
        let last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let lines: Vec<&str> = last.iter().map(String::as_str).collect();
        match hint(&lines, under_systemd()) {
            Some(hint) => format!("{message}; {hint}"),
            None => message,
        }
    }
}

impl LineSink for Watch<'_> {
    fn line(&self, stream: Stream, line: String) {
        self.keep(&line);
        self.inner.line(stream, line);
    }

    fn lines(&self, stream: Stream, lines: Vec<String>) {
        for line in &lines {
            self.keep(line);
        }
        self.inner.lines(stream, lines);
    }

    fn room(&self) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>> {
        self.inner.room()
    }

    fn started(&self, pid: u32) {
        self.inner.started(pid);
    }

    fn ended(&self) {
        self.inner.ended();
    }
}

/// Whether this agent runs as a systemd service (systemd sets
/// `INVOCATION_ID` for the processes of a unit); only then can a sandbox
/// be the cause.
fn under_systemd() -> bool {
    std::env::var_os("INVOCATION_ID").is_some()
}

/// The sandbox's part in a failure whose last output lines are `lines`:
/// what it refused and the drop-in to use; `None` when nothing points at
/// it or the agent is not a systemd service.
pub fn hint(lines: &[&str], under_systemd: bool) -> Option<String> {
    if !under_systemd {
        return None;
    }
    let newest_first = || lines.iter().rev();
    if newest_first().any(|line| line.contains("no new privileges")) {
        return Some(privileged("sudo was refused (\"no new privileges\")"));
    }
    if let Some(line) = newest_first().find(|line| line.contains("Read-only file system")) {
        let wanted =
            path_in(line).map_or_else(|| "/srv/myapp".to_string(), |path| directory_of(&path));
        return Some(format!(
            "the agent's systemd sandbox refused a write (read-only file system: `{}`): scripts may write only their work directory and a private /tmp; to let them write {wanted}, add a drop-in with `systemctl edit berth-agent` like {EXAMPLES}/writable-paths.conf ([Service] ReadWritePaths={wanted}), then `systemctl restart berth-agent`",
            line.trim()
        ));
    }
    if let Some(line) = newest_first()
        .find(|line| line.contains("Permission denied") || line.contains("Operation not permitted"))
    {
        return Some(privileged(&format!("permission denied: `{}`", line.trim())));
    }
    None
}

fn privileged(what: &str) -> String {
    format!(
        "the agent's systemd sandbox may have refused this ({what}): scripts run as the berth-agent user without privileges; give that user the files it needs, or use sudo for exact commands with the drop-in {EXAMPLES}/privileged-setup.conf and {EXAMPLES}/sudoers.example, then `systemctl restart berth-agent`"
    )
}

/// The first absolute path in `line` (`touch: cannot touch '/srv/x': ...`).
fn path_in(line: &str) -> Option<String> {
    let start = line.find('/')?;
    let path: String = line[start..]
        .chars()
        .take_while(|c| !matches!(c, '\'' | '"' | ':' | ' ' | '`' | '’'))
        .collect();
    (path.len() > 1).then_some(path)
}

/// The directory a drop-in would open for a write to `path`: the one it
/// was made in, cut to two components (`/srv/myapp/data/x` → `/srv/myapp`,
/// `/srv/x` → `/srv`), since `ReadWritePaths=` needs a path that exists.
fn directory_of(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    let parent = &parts[..parts.len().saturating_sub(1)];
    format!(
        "/{}",
        parent.iter().take(2).copied().collect::<Vec<_>>().join("/")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(lines: &[&str], wanted: Option<&str>) {
        let hint = hint(lines, true);
        match (hint, wanted) {
            (None, None) => {}
            (Some(hint), Some(wanted)) => assert!(hint.contains(wanted), "{hint}"),
            (hint, wanted) => panic!("want {wanted:?}, got {hint:?}"),
        }
    }

    #[test]
    fn a_read_only_file_system_names_the_path_and_the_drop_in() {
        check(
            &["touch: cannot touch '/srv/shop/current/x': Read-only file system"],
            Some("ReadWritePaths=/srv/shop"),
        );
        check(
            &["mkdir: cannot create directory ‘/opt/app’: Read-only file system"],
            Some("ReadWritePaths=/opt)"),
        );
    }

    #[test]
    fn sudo_and_permission_denied_point_at_the_privileged_drop_in() {
        check(
            &[
                "sudo: The \"no new privileges\" flag is set, which prevents sudo from running as root.",
            ],
            Some("privileged-setup.conf"),
        );
        check(
            &["cp: cannot create regular file '/etc/app.conf': Permission denied"],
            Some("permission denied: `cp: cannot create"),
        );
    }

    #[test]
    fn other_failures_and_agents_outside_systemd_get_no_hint() {
        check(&["error: tests failed"], None);
        assert_eq!(hint(&["x: Read-only file system"], false), None);
    }
}
