//! A booted Debian machine for the packaging tests: a copy of the cached
//! debootstrap tree ([`crate::chroot`]) booted with `systemd-nspawn
//! --boot`, so systemd 252 is its PID 1 and units really start, sandbox
//! and all. It runs in the network namespace of a [`crate::netns::Fleet`]
//! host (198.18.0.0/15, a bridge in a switch namespace), so the machine
//! has no interface in the root namespace. Commands run in it through
//! `nsenter` into all of its namespaces.
//!
//! `--register=no --keep-unit` keep nspawn away from the host's systemd
//! (there may be none). The machine is stopped by killing its PID 1,
//! which takes every process of its PID namespace with it; then the tree
//! is deleted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::chroot::{Chroot, has_command};
use crate::{Cli, DEADLINE, Running};

/// A booted machine, stopped and deleted on drop.
pub struct Machine {
    /// PID (in the test's namespace) of the machine's systemd.
    leader: u32,
    nspawn: Running,
    /// nspawn's log.
    _logs: tempfile::TempDir,
    /// Dropped last: the tree is deleted once nothing runs in it.
    tree: Chroot,
}

impl Machine {
    /// Boots a copy of the cached Debian tree as machine `name` in network
    /// namespace `netns` and waits until systemd has finished starting it;
    /// `Err` names what this machine lacks (a machine that does not boot
    /// panics with systemd's own account).
    pub fn boot(netns: &str, name: &str) -> Result<Machine, String> {
        for (tool, package) in [
            ("systemd-nspawn", "systemd-container"),
            ("nsenter", "util-linux"),
        ] {
            if !has_command(tool) {
                return Err(format!("{tool} (apt-get install {package})"));
            }
        }
        let tree = Chroot::new()?;
        let logs = tempfile::Builder::new()
            .prefix("berth-nspawn-")
            .tempdir()
            .map_err(|err| format!("a temporary directory: {err}"))?;
        let mut command = Command::new("systemd-nspawn");
        command
            .arg("--directory")
            .arg(tree.path("/"))
            .args(["--boot", "--register=no", "--keep-unit", "--console=pipe"])
            .arg(format!("--network-namespace-path=/run/netns/{netns}"))
            .arg(format!("--machine={name}"))
            .stdin(Stdio::null());
        let nspawn = Running::spawn(command, &logs.path().join("nspawn.log"));
        let leader = crate::eventually(
            "the machine's systemd starting",
            600,
            Duration::from_millis(100),
            || init_of(name),
        );
        let machine = Machine {
            leader,
            nspawn,
            _logs: logs,
            tree,
        };
        // Polling is unavoidable here: systemd's socket appears inside the
        // machine's own /run, and systemd says when booting is done only
        // to a client that asks (`--wait` then blocks until it is).
        crate::eventually(
            "the machine's systemd listening",
            600,
            Duration::from_millis(100),
            || (machine.run("test -S /run/systemd/private", &[]).code == 0).then_some(()),
        );
        let booted = machine.run("timeout 120 systemctl is-system-running --wait", &[]);
        let state = booted.stdout.trim();
        // A machine that does not boot is a failure, not a skip.
        assert!(
            state == "running" || state == "degraded",
            "the machine booted with systemd-nspawn says `{state}`\n{}{}\n{}",
            booted.stderr,
            machine.run("systemctl --failed --no-pager", &[]).stdout,
            machine.nspawn.log_tail()
        );
        Ok(machine)
    }

    /// The host path of `path` inside the machine.
    pub fn path(&self, path: &str) -> PathBuf {
        self.tree.path(path)
    }

    /// Copies a host file into the machine at `path`.
    pub fn copy_in(&self, from: &Path, path: &str) {
        self.tree.copy_in(from, path);
    }

    /// Runs `script` with `sh -c` as root inside the machine, with `env`
    /// set (and nothing else of the test's environment).
    pub fn run(&self, script: &str, env: &[(&str, &str)]) -> Cli {
        let mut command = Command::new("nsenter");
        command
            .args(["--target", &self.leader.to_string(), "--all", "--"])
            .args(["/bin/sh", "-c", script])
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C.UTF-8")
            .env("HOME", "/root")
            .stdin(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        Cli::from(command.output().expect("run nsenter"))
    }

    /// Like [`Machine::run`], asserting success; returns stdout.
    pub fn ok(&self, script: &str, env: &[(&str, &str)]) -> String {
        let result = self.run(script, env);
        assert_eq!(
            result.code, 0,
            "in the machine: {script}\nstdout:\n{}\nstderr:\n{}",
            result.stdout, result.stderr
        );
        result.stdout
    }

    /// The journal of `unit` in the machine (for failure messages).
    pub fn journal(&self, unit: &str) -> String {
        self.run(&format!("journalctl -u {unit} --no-pager -n 60"), &[])
            .stdout
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // SIGKILL to the machine's PID 1 ends its whole PID namespace;
        // nspawn then exits.
        let _ = Command::new("kill")
            .args(["-KILL", &self.leader.to_string()])
            .status();
        if self.nspawn.wait_exit(DEADLINE).is_none() {
            self.nspawn.kill9();
        }
    }
}

/// The PID of the `systemd` that the nspawn of machine `name` started.
fn init_of(name: &str) -> Option<u32> {
    let wanted = format!("--machine={name}");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            let field = |key: &str| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix(key))
                    .map(str::trim)
                    .map(str::to_string)
            };
            if field("Name:")? != "systemd" {
                return None;
            }
            let parent = field("PPid:")?;
            let cmdline = std::fs::read(format!("/proc/{parent}/cmdline")).ok()?;
            cmdline
                .split(|byte| *byte == 0)
                .any(|arg| arg == wanted.as_bytes())
                .then_some(pid)
        })
}
