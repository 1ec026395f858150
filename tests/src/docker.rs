//! A private Docker daemon for the container tests: its own socket, data
//! root, exec root and pid file under a temporary directory, started once
//! per test binary and stopped (by its pid) when dropped. Images come from
//! `docker import` of a rootfs holding Debian's static busybox, since no
//! registry is reachable.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::{DEADLINE, Running, skip};

/// The tag [`Dockerd::import_busybox`] is given in the tests.
pub const IMAGE: &str = "berth-test/busybox:1";
/// A `[container] command` serving `/www` of [`IMAGE`] on port 8080.
pub const HTTPD: &str = r#"["httpd", "-f", "-vv", "-p", "8080", "-h", "/www"]"#;

/// A container app of [`IMAGE`] serving its `/www` on `host`, gated by an
/// HTTP check of `check` (every 200 ms, for at most `timeout`).
pub fn checked_manifest(
    app: &str,
    host: &str,
    version: &str,
    check: &str,
    timeout: &str,
) -> String {
    format!(
        "app = \"{app}\"\nversion = \"{version}\"\n[target]\nhosts = [\"{host}\"]\n[container]\nimage = \"{IMAGE}\"\nport = 8080\ncommand = {HTTPD}\nstop_timeout = \"1s\"\n[health]\nhttp = \"{check}\"\ninterval = \"200ms\"\ntimeout = \"{timeout}\"\n"
    )
}

/// The host port a deployment's task `task` published its container on.
pub fn host_port(deployment: &serde_json::Value, task: usize) -> String {
    let stages = deployment["tasks"][task]["stages"]
        .as_array()
        .expect("stages");
    let deploy = stages
        .iter()
        .find(|stage| stage["stage"] == "deploy")
        .expect("a deploy stage");
    deploy["details"]["host_port"]
        .as_str()
        .expect("host port")
        .to_string()
}

/// A running private `dockerd`.
pub struct Dockerd {
    pub dir: tempfile::TempDir,
    /// `unix:///.../docker.sock`, for `berth-agent --docker-host`.
    pub host: String,
    process: Running,
    /// The extra dockerd arguments it was started with (for a restart).
    extra: Vec<String>,
}

fn find(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(program))
                .find(|path| path.exists())
        })
        .unwrap_or(None)
}

/// The static busybox binary, if installed (Debian's busybox-static).
pub fn static_busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|path| {
            path.exists()
                && Command::new("ldd").arg(path).output().is_ok_and(|out| {
                    String::from_utf8_lossy(&out.stdout).contains("not a dynamic")
                        || String::from_utf8_lossy(&out.stderr).contains("not a dynamic")
                })
        })
}

impl Dockerd {
    /// Starts a private daemon, or skips `test` (printing why) when this
    /// machine cannot: no dockerd, no docker CLI, no static busybox, or not root.
    pub fn start(test: &str) -> Option<Dockerd> {
        Dockerd::start_with(test, &[])
    }

    /// Like [`Dockerd::start`] with extra dockerd arguments, e.g. a second
    /// daemon with `--bridge=none` so it never touches the first one's
    /// bridge.
    pub fn start_with(test: &str, extra: &[&str]) -> Option<Dockerd> {
        let missing = if find("dockerd").is_none() {
            Some("dockerd (apt-get install docker.io)")
        } else if find("docker").is_none() {
            Some("the docker CLI (apt-get install docker.io)")
        } else if static_busybox().is_none() {
            Some("a static busybox (apt-get install busybox-static)")
        } else if !Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.starts_with(b"0"))
        {
            Some("root, to run dockerd")
        } else {
            None
        };
        if let Some(missing) = missing {
            skip(test, missing);
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-dockerd-")
            .tempdir()
            .expect("tempdir");
        let socket = dir.path().join("docker.sock");
        let extra: Vec<String> = extra.iter().map(|arg| arg.to_string()).collect();
        let process = launch(dir.path(), &extra, "dockerd.log");
        let host = format!("unix://{}", socket.display());
        Some(Dockerd {
            dir,
            host,
            process,
            extra,
        })
    }

    /// Stops the daemon gracefully (its containers stop with it) and
    /// starts it again on the same data: what `systemctl restart docker`
    /// does. Containers with a restart policy come back.
    pub fn restart(&mut self) {
        self.stop_daemon();
        self.process = launch(self.dir.path(), &self.extra, "dockerd-restarted.log");
    }

    /// Stops the daemon gracefully and waits for it to exit.
    pub fn stop_daemon(&mut self) {
        self.process.terminate();
        if self.process.wait_exit(DEADLINE).is_none() {
            self.process.kill9();
        }
    }

    /// Starts a daemon stopped with [`Dockerd::stop_daemon`] again.
    pub fn start_daemon(&mut self) {
        self.process = launch(self.dir.path(), &self.extra, "dockerd-restarted.log");
    }

    /// Runs the docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(&self.host)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
    }

    /// Like [`Dockerd::docker`], asserting success; returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Imports a tiny image (static busybox with `sh`, `httpd` and friends)
    /// under `tag`.
    pub fn import_busybox(&self, tag: &str) {
        let root = self.dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("bin")).expect("rootfs");
        std::fs::create_dir_all(root.join("www")).expect("www");
        std::fs::write(root.join("www/index.html"), "hello from the test image\n").expect("page");
        std::fs::copy(
            static_busybox().expect("checked at start"),
            root.join("bin/busybox"),
        )
        .expect("copy busybox");
        for applet in ["sh", "httpd", "echo", "cat", "sleep", "ls", "rm"] {
            let link = root.join("bin").join(applet);
            if !link.exists() {
                std::os::unix::fs::symlink("busybox", link).expect("applet link");
            }
        }
        self.import_dir(&root, tag);
    }

    /// Imports the directory `root` as the image `tag` (`docker import` of
    /// its tar).
    pub fn import_dir(&self, root: &std::path::Path, tag: &str) {
        let archive = root.with_extension("tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(root)
            .arg("-cf")
            .arg(&archive)
            .arg(".")
            .status()
            .expect("tar");
        assert!(status.success(), "tar of {} failed", root.display());
        self.docker_ok(&["import", archive.to_str().expect("path"), tag]);
    }

    /// Names of the containers whose label `berth.app` is `app`.
    pub fn containers_of(&self, app: &str) -> Vec<String> {
        let out = self.docker_ok(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=berth.app={app}"),
            "--format",
            "{{.Names}} {{.State}}",
        ]);
        out.lines().map(str::to_string).collect()
    }

    /// The daemon's data directory (for tests that save images).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // Remove what the tests left (containers, then networks), then stop
        // the daemon gracefully so it takes its containerd with it.
        if let Ok(out) = Command::new("docker")
            .arg("-H")
            .arg(&self.host)
            .args(["ps", "-aq"])
            .output()
        {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .arg("-H")
                    .arg(&self.host)
                    .args(["rm", "-f"])
                    .args(&ids)
                    .output();
            }
        }
        // A network's bridge outlives the daemon and its data directory:
        // left behind, bridges from run after run use up Docker's address
        // pools on this machine ("could not find an available,
        // non-overlapping IPv4 address pool").
        let _ = Command::new("docker")
            .arg("-H")
            .arg(&self.host)
            .args(["network", "prune", "-f"])
            .output();
        self.process.terminate();
        if self.process.wait_exit(DEADLINE).is_none() {
            self.process.kill9();
        }
    }
}

/// Starts dockerd on the socket, data root, exec root and pid file under
/// `dir` and waits until its API listens.
fn launch(dir: &Path, extra: &[String], log: &str) -> Running {
    let mut command = Command::new("dockerd");
    command
        .arg("--host")
        .arg(format!("unix://{}", dir.join("docker.sock").display()))
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("exec"))
        .arg("--pidfile")
        .arg(dir.join("docker.pid"))
        .args(extra);
    let process = Running::spawn(command, &dir.join(log));
    let ready = process.stderr.wait_for("API listen on", DEADLINE);
    assert!(
        ready.is_some(),
        "dockerd did not start:\n{}",
        process.log_tail()
    );
    process
}

/// A plain HTTP GET to 127.0.0.1:`port`; returns the body.
pub fn http_get(port: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().ok()?)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}
