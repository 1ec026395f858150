//! A scratch Debian system to install berth's packages into: a copy of a
//! `debootstrap --variant=minbase` bookworm tree (with systemd, for
//! `systemctl enable` and `systemd-analyze verify`), made once and cached
//! under `target/berth-chroot/`. Commands run in it through `unshare`, in a
//! mount namespace of their own (so the `/proc` mounted for them disappears
//! with them) and, for long-running ones, a PID namespace that dies with
//! the process the test holds. The chroot shares the test's network, so
//! what runs in it reaches a controller on loopback.
//!
//! systemd is not PID 1 in the chroot: units are enabled and verified, but
//! never started.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Cli, Running, bin_dir};

/// The cached base tree's name; change it when the package list changes.
const BASE: &str = "bookworm-minbase-systemd-1";
/// Packages added to debootstrap's minbase set.
const INCLUDE: &str = "systemd";

/// A throwaway copy of the cached Debian tree, deleted on drop.
pub struct Chroot {
    /// `None` only while dropping.
    root: Option<tempfile::TempDir>,
    processes: Vec<Running>,
}

/// Whether the test runs as root (effective uid 0).
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // "Uid: real effective saved filesystem"
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// Whether `tool` is on the PATH.
pub fn has_command(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", "command -v \"$1\" >/dev/null", "sh", tool])
        .status()
        .is_ok_and(|status| status.success())
}

impl Chroot {
    /// A fresh copy of the base tree; `Err` names what this machine lacks
    /// (root, debootstrap, unshare, or the Debian mirror for the first
    /// build of the cache).
    pub fn new() -> Result<Chroot, String> {
        if !is_root() {
            return Err("root, to build and enter a chroot".into());
        }
        for tool in ["debootstrap", "unshare", "chroot"] {
            if !has_command(tool) {
                return Err(format!("{tool} (apt-get install debootstrap util-linux)"));
            }
        }
        let cache = bin_dir()
            .parent()
            .expect("target directory")
            .join("berth-chroot");
        let base = ensure_base(&cache)?;
        let root = tempfile::Builder::new()
            .prefix("root-")
            .tempdir_in(&cache)
            .map_err(|err| format!("a scratch directory in {}: {err}", cache.display()))?;
        let copied = Command::new("cp")
            .args(["-a", "--"])
            .arg(base.join("."))
            .arg(root.path())
            .status()
            .is_ok_and(|status| status.success());
        assert!(
            copied,
            "copy {} to {}",
            base.display(),
            root.path().display()
        );
        Ok(Chroot {
            root: Some(root),
            processes: Vec::new(),
        })
    }

    fn root(&self) -> &Path {
        self.root.as_ref().expect("chroot directory").path()
    }

    /// The host path of `path` inside the chroot.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root().join(path.trim_start_matches('/'))
    }

    /// Copies a host file into the chroot at `path`.
    pub fn copy_in(&self, from: &Path, path: &str) {
        let to = self.path(path);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("create directory");
        std::fs::copy(from, &to)
            .unwrap_or_else(|err| panic!("copy {} to {}: {err}", from.display(), to.display()));
    }

    /// Runs `script` with `sh -c` inside the chroot, with `env` set.
    pub fn run(&self, script: &str, env: &[(&str, &str)]) -> Cli {
        let output = self
            .command(script, false, env)
            .stdin(Stdio::null())
            .output()
            .expect("run unshare");
        Cli::from(output)
    }

    /// Starts `script` in the background inside the chroot, in a PID
    /// namespace that is killed with it when the chroot is dropped.
    pub fn spawn(&mut self, script: &str, log_name: &str) -> &Running {
        let log = self.path(&format!("tmp/{log_name}.log"));
        let process = Running::spawn(self.command(script, true, &[]), &log);
        self.processes.push(process);
        self.processes.last().expect("just pushed")
    }

    /// Kills what [`Chroot::spawn`] started, newest first.
    pub fn kill_all(&mut self) {
        while let Some(mut process) = self.processes.pop() {
            process.kill9();
        }
    }

    fn command(&self, script: &str, own_pids: bool, env: &[(&str, &str)]) -> Command {
        let root = self.root().to_str().expect("utf-8 path");
        let mut command = Command::new("unshare");
        command.args(["--mount", "--propagation", "private"]);
        if own_pids {
            // The namespace's first process dies with unshare (SIGKILL from
            // --kill-child), and every process of the namespace with it.
            command.args(["--pid", "--fork", "--kill-child"]);
        }
        command
            .args(["--", "sh", "-c"])
            .arg(r#"mount -t proc proc "$1/proc" && root=$1 && shift && exec chroot "$root" sh -c "$@""#)
            .args(["berth-chroot", root, script])
            .env_clear()
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C.UTF-8");
        for (key, value) in env {
            command.env(key, value);
        }
        command
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        self.kill_all();
        // Everything was mounted in namespaces that died with their
        // processes; never delete a tree that still has a mount in it.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = self.root().to_string_lossy().into_owned();
        if mounts.lines().any(|line| line.contains(&root))
            && let Some(dir) = self.root.take()
        {
            eprintln!("leaving {root} in place: something is still mounted in it");
            let _ = dir.keep();
        }
    }
}

/// The cached base tree, built with debootstrap on first use (about 30 s
/// and 250 MB); a file lock keeps concurrent test binaries from building
/// it twice.
fn ensure_base(cache: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(cache).map_err(|err| format!("create {}: {err}", cache.display()))?;
    let base = cache.join(BASE);
    let lock = File::create(cache.join(format!("{BASE}.lock")))
        .map_err(|err| format!("lock file in {}: {err}", cache.display()))?;
    lock.lock()
        .map_err(|err| format!("lock {}: {err}", cache.display()))?;
    if base.join("usr/bin/systemctl").exists() {
        return Ok(base);
    }
    let building = cache.join(format!("{BASE}.building"));
    let _ = std::fs::remove_dir_all(&building);
    let mirror = std::env::var("BERTH_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".into());
    eprintln!(
        "building the Debian chroot cache {} from {mirror}",
        base.display()
    );
    let output = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            &format!("--include={INCLUDE}"),
            "bookworm",
        ])
        .arg(&building)
        .arg(&mirror)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("debootstrap ({err})"))?;
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&building);
        let log = String::from_utf8_lossy(&output.stdout);
        let tail: Vec<&str> = log.lines().rev().take(3).collect();
        return Err(format!(
            "a Debian mirror for debootstrap ({mirror}; set BERTH_DEBIAN_MIRROR): {}",
            tail.join(" / ")
        ));
    }
    std::fs::rename(&building, &base).map_err(|err| format!("rename the chroot cache: {err}"))?;
    Ok(base)
}
