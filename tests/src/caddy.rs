//! A private Caddy for the proxy tests: admin API on a loopback port the
//! test picks, config and data directories under a temporary directory.

use std::process::Command;

use crate::{DEADLINE, Running, skip};

/// A running Caddy.
pub struct Caddy {
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT` of the admin API.
    pub admin: String,
    /// The port berth's plain-HTTP routes are served on.
    pub http_port: u16,
    /// Caddy apps of the operator's own, present from the start (and
    /// after a restart without the saved config).
    apps: Option<String>,
    process: Option<Running>,
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

impl Caddy {
    /// Starts Caddy, or skips `test` when it is not installed.
    pub fn start(test: &str) -> Option<Caddy> {
        Caddy::start_with_apps(test, None)
    }

    /// Starts Caddy with `apps` (JSON, e.g. a `tls` app with a default
    /// issuer) in its initial config.
    pub fn start_with_apps(test: &str, apps: Option<String>) -> Option<Caddy> {
        let installed = Command::new("caddy")
            .arg("version")
            .output()
            .is_ok_and(|out| out.status.success());
        if !installed {
            skip(test, "caddy (apt-get install caddy)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-caddy-")
            .tempdir()
            .expect("tempdir");
        let admin_port = free_port();
        let mut caddy = Caddy {
            admin: format!("http://127.0.0.1:{admin_port}"),
            http_port: free_port(),
            apps,
            dir,
            process: None,
        };
        caddy.run();
        Some(caddy)
    }

    fn run(&mut self) {
        let authority = self.admin.trim_start_matches("http://");
        let config = self.dir.path().join("initial.json");
        let apps = self
            .apps
            .as_ref()
            .map(|apps| format!(r#","apps":{apps}"#))
            .unwrap_or_default();
        std::fs::write(
            &config,
            format!(r#"{{"admin":{{"listen":"{authority}"}}{apps}}}"#),
        )
        .expect("config");
        let mut command = Command::new("caddy");
        command
            .args(["run", "--config"])
            .arg(&config)
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"));
        let process = Running::spawn(command, &self.dir.path().join("caddy.log"));
        let ready = process
            .stderr
            .wait_for("serving initial configuration", DEADLINE);
        assert!(
            ready.is_some(),
            "caddy did not start:\n{}",
            process.log_tail()
        );
        self.process = Some(process);
    }

    /// `kill -9`, then a fresh start that has forgotten every route.
    pub fn restart_without_config(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill9();
        }
        let _ = std::fs::remove_dir_all(self.dir.path().join("config"));
        self.run();
    }

    /// A part of Caddy's running config, from its admin API.
    pub fn config(&self, path: &str) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "5"])
            .arg(format!("{}{path}", self.admin))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// GET `path` through Caddy with `Host: domain`; status and body.
    pub fn get(&self, domain: &str, path: &str) -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.http_port)).ok()?;
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {domain}\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default();
        Some((status, body))
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill9();
        }
    }
}
