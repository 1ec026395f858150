//! The end-to-end harness: starts the real `berth-controller`,
//! `berth-agent` and `berth` binaries as processes in temporary
//! directories, on loopback (or in the network namespaces of a
//! [`netns::Fleet`]), and lets tests wait for events (a line in a
//! process's output, a process ending) under deadlines instead of sleeping.
//!
//! Processes are owned by their handles and killed by PID when dropped.
//! Invariant: this crate only drives binaries; it links the other crates
//! only for shared types, to build hostile inputs (foreign CAs, raw
//! archives), and for the enrollment ([`fleet`]) and load-generator
//! ([`loadgen`]) clients of the benchmark (`src/bin/berth-bench/`) and
//! chaos (`src/bin/berth-chaos/`) programs.

pub mod agent_link;
pub mod browser;
pub mod bundle;
pub mod caddy;
pub mod chroot;
pub mod clock;
pub mod docker;
pub mod fleet;
pub mod http;
pub mod loadgen;
pub mod netns;
pub mod nspawn;
pub mod openmetrics;
pub mod patroni;
pub mod pebble;
pub mod postgres;
pub mod probe;
mod process;
pub mod procfs;
pub mod resource;
pub mod stats;
pub mod webhook_receiver;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub use process::{Lines, Running};

/// Default deadline for anything a test waits for.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The directory holding the workspace's built binaries.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/test-HASH → target/debug; a harness binary
    // (target/release/berth-bench) sits beside the binaries it drives.
    let beside = exe.parent().expect("executable directory");
    let dir = if beside.join("berth-agent").exists() {
        beside.to_path_buf()
    } else {
        beside.parent().expect("target directory").to_path_buf()
    };
    for name in ["berth", "berth-agent", "berth-controller"] {
        assert!(
            dir.join(name).exists(),
            "{} is missing; run `cargo build --workspace --bins` before the end-to-end tests",
            dir.join(name).display()
        );
    }
    dir
}

/// Path of one of berth's binaries.
pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// A finished CLI run.
#[derive(Debug)]
pub struct Cli {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Cli {
    fn from(output: Output) -> Cli {
        Cli {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    pub fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "command failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    /// Parses stdout as JSON.
    pub fn json(self) -> serde_json::Value {
        let stdout = self.ok();
        serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("not JSON ({err}):\n{stdout}"))
    }

    /// The JSON a command printed, whatever its exit code (with `-o json`
    /// a refusal prints `{"error": {...}}` there).
    pub fn printed(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}\n{}", self.stdout, self.stderr))
    }

    /// Asserts a refusal printed with `-o json`: its exit code and
    /// machine code.
    #[track_caller]
    pub fn refused(&self, exit: i32, code: &str) {
        assert_eq!(self.code, exit, "{}\n{}", self.stdout, self.stderr);
        assert_eq!(self.printed()["error"]["code"], code, "{}", self.stdout);
    }
}

/// A controller process with its data directory.
pub struct Controller {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub address: String,
    /// The HTTP API's base URL (`http://127.0.0.1:PORT`), once serving;
    /// empty when it is off (a controller in a network namespace).
    pub http_url: String,
    /// `--http-listen`: a free loopback port at first, then the port it
    /// got, so a restart keeps it.
    http_listen: String,
    /// `GET /metrics`' URL (`http://127.0.0.1:PORT/metrics`), once
    /// serving; empty when metrics are off.
    pub metrics_url: String,
    /// `--metrics-listen`, kept across restarts like `http_listen`.
    metrics_listen: String,
    serve_args: Vec<String>,
    /// The network namespace it (and the CLI) runs in; `None` for the
    /// test's own.
    netns: Option<String>,
    process: Option<Running>,
    /// A tmpfs mounted as its data directory, unmounted on drop.
    tmpfs: Option<PathBuf>,
}

impl Controller {
    /// Initializes a data directory and starts serving on a free port.
    pub fn start() -> Controller {
        Controller::start_with_grace("60s")
    }

    /// Like [`Controller::start`] with a given `--lost-grace`.
    pub fn start_with_grace(lost_grace: &str) -> Controller {
        Controller::start_with(&["--lost-grace", lost_grace])
    }

    /// Like [`Controller::start`] with extra `serve` arguments.
    pub fn start_with(serve_args: &[&str]) -> Controller {
        Controller::launch(None, "127.0.0.1", serve_args, &[])
    }

    /// Like [`Controller::start_with`] inside network namespace `netns`,
    /// listening on `ip` (its address there, also named in its server
    /// certificate); the CLI runs in that namespace too.
    pub fn start_in(netns: &str, ip: &str, serve_args: &[&str]) -> Controller {
        Controller::launch(Some(netns), ip, serve_args, &[])
    }

    /// Like [`Controller::start_with`] with its whole data directory on a
    /// tmpfs of `mib` MiB (a disk that can fill up); `None` when the tmpfs
    /// cannot be mounted (not root).
    pub fn start_on_tmpfs(mib: u32, serve_args: &[&str]) -> Option<Controller> {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir()
            .expect("tempdir");
        let data = dir.path().join("controller");
        std::fs::create_dir(&data).expect("create the data directory");
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(&data)
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            return None;
        }
        let mut controller = Controller::init_in(dir, None, "127.0.0.1", serve_args, &[], None);
        controller.tmpfs = Some(data);
        controller.serve();
        Some(controller)
    }

    /// Like [`Controller::start_with`], running `berth-controller init`
    /// with extra environment variables (e.g. a skewed clock from
    /// [`clock::skewed`], to make certificates that were issued earlier).
    pub fn start_with_init_env(init_env: &[(String, String)], serve_args: &[&str]) -> Controller {
        Controller::launch(None, "127.0.0.1", serve_args, init_env)
    }

    /// Like [`Controller::start`], always on the sled store, even in the
    /// PostgreSQL pass (for a test that moves a sled store).
    pub fn start_on_sled() -> Controller {
        Controller::launch_on(None, "127.0.0.1", &[], &[], Some(None))
    }

    /// Like [`Controller::start`], always on a new schema of the PostgreSQL
    /// `server`, even in the sled pass.
    pub fn start_on_postgres(server: &str) -> Controller {
        let store = postgres::fresh_schema(server);
        Controller::launch_on(None, "127.0.0.1", &[], &[], Some(Some(store)))
    }

    fn launch(
        netns: Option<&str>,
        ip: &str,
        serve_args: &[&str],
        init_env: &[(String, String)],
    ) -> Controller {
        Controller::launch_on(netns, ip, serve_args, init_env, None)
    }

    /// `store`: `None` for this run's stores (`postgres.rs`), else sled
    /// (`Some(None)`) or that PostgreSQL address.
    fn launch_on(
        netns: Option<&str>,
        ip: &str,
        serve_args: &[&str],
        init_env: &[(String, String)],
        store: Option<Option<String>>,
    ) -> Controller {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir()
            .expect("tempdir");
        let mut controller = Controller::init_in(dir, netns, ip, serve_args, init_env, store);
        controller.serve();
        controller
    }

    /// Runs `berth-controller init` in `dir`.
    fn init_in(
        dir: tempfile::TempDir,
        netns: Option<&str>,
        ip: &str,
        serve_args: &[&str],
        init_env: &[(String, String)],
        store: Option<Option<String>>,
    ) -> Controller {
        let data = dir.path().join("controller");
        let mut init = Command::new(bin("berth-controller"));
        init.args(["init", "--name", ip, "--data-dir"]).arg(&data);
        if let Some(store) = store.unwrap_or_else(postgres::fresh_store) {
            init.args(["--store", &store]);
        }
        let status = init
            .envs(init_env.iter().map(|(key, value)| (key, value)))
            .stdout(Stdio::null())
            .status()
            .expect("run berth-controller init");
        assert!(status.success(), "berth-controller init failed");
        // Inside a network namespace the tests reach the controller only
        // through its gRPC address; the HTTP API stays off there.
        let http_listen = if netns.is_some() {
            "off"
        } else {
            "127.0.0.1:0"
        };
        Controller {
            dir,
            url: String::new(),
            address: format!("{ip}:0"),
            http_url: String::new(),
            http_listen: http_listen.to_string(),
            metrics_url: String::new(),
            metrics_listen: http_listen.to_string(),
            serve_args: serve_args.iter().map(|arg| arg.to_string()).collect(),
            netns: netns.map(str::to_string),
            process: None,
            tmpfs: None,
        }
    }

    /// Whether the controller process is still running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(Running::is_running)
    }

    fn serve(&mut self) {
        self.spawn_serve();
        self.wait_serving();
    }

    fn spawn_serve(&mut self) {
        let data = self.dir.path().join("controller");
        let log = self.dir.path().join("controller.log");
        let mut command = netns::command_in(self.netns.as_deref(), &bin("berth-controller"));
        command
            .args(["serve", "--listen", &self.address, "--data-dir"])
            .arg(&data);
        if !self
            .serve_args
            .iter()
            .any(|arg| arg.starts_with("--http-listen"))
        {
            command.args(["--http-listen", &self.http_listen]);
        }
        if !self
            .serve_args
            .iter()
            .any(|arg| arg.starts_with("--metrics-listen"))
        {
            command.args(["--metrics-listen", &self.metrics_listen]);
        }
        command.args(&self.serve_args);
        self.process = Some(Running::spawn(command, &log));
    }

    /// Waits until the controller listens and reads the addresses it
    /// printed.
    pub fn wait_serving(&mut self) {
        let process = self.process.as_ref().expect("controller is running");
        let line = process
            .stdout
            .wait_for("listening on", DEADLINE)
            .unwrap_or_else(|| panic!("controller did not start:\n{}", process.log_tail()));
        self.address = line.rsplit(' ').next().expect("address").to_string();
        self.url = format!("https://{}", self.address);
        // Printed before the line waited for, when the API is on.
        self.http_url = process
            .stdout
            .all()
            .iter()
            .find_map(|line| line.strip_prefix("berth-controller HTTP API on "))
            .unwrap_or_default()
            .to_string();
        if let Some((_, address)) = self.http_url.split_once("://") {
            self.http_listen = address.to_string();
        }
        self.metrics_url = process
            .stdout
            .all()
            .iter()
            .find_map(|line| line.strip_prefix("berth-controller metrics on "))
            .unwrap_or_default()
            .to_string();
        if let Some(address) = self
            .metrics_url
            .strip_prefix("http://")
            .and_then(|rest| rest.strip_suffix("/metrics"))
        {
            self.metrics_listen = address.to_string();
        }
    }

    /// A second controller on this one's PostgreSQL store: a data
    /// directory of its own holding this one's CA, server certificate,
    /// secrets key and store record, this one's blob directory, and its
    /// own free port. It is started and serves beside this one
    /// ([`Controller::wait_serving`] waits for it to listen).
    pub fn peer(&self) -> Controller {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir()
            .expect("tempdir");
        let from = self.dir.path().join("controller");
        let data = dir.path().join("controller");
        for path in [
            "pki/ca.pem",
            "pki/ca.key",
            "pki/server.pem",
            "pki/server.key",
            "keys/secrets.key",
            "store.toml",
            "admin.conf",
        ] {
            let target = data.join(path);
            std::fs::create_dir_all(target.parent().expect("parent")).expect("make the directory");
            std::fs::copy(from.join(path), &target)
                .unwrap_or_else(|err| panic!("copy {path} for the peer: {err}"));
        }
        let port = caddy::free_port();
        let mut peer = Controller {
            dir,
            url: format!("https://127.0.0.1:{port}"),
            address: format!("127.0.0.1:{port}"),
            http_url: String::new(),
            http_listen: "127.0.0.1:0".into(),
            metrics_url: String::new(),
            metrics_listen: "127.0.0.1:0".into(),
            serve_args: vec![
                "--blob-dir".into(),
                from.join("blobs").display().to_string(),
            ],
            netns: None,
            process: None,
            tmpfs: None,
        };
        peer.spawn_serve();
        peer
    }

    /// The admin credential bundle.
    pub fn admin(&self) -> PathBuf {
        self.dir.path().join("controller/admin.conf")
    }

    /// The running controller process, to wait for a line of its log.
    pub fn process(&self) -> &Running {
        self.process.as_ref().expect("controller is running")
    }

    /// The running controller process, taken out of the harness (to wait
    /// for an exit of its own).
    pub fn process_take(&mut self) -> Running {
        self.process.take().expect("controller is running")
    }

    /// `kill -9` the controller.
    pub fn kill9(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill9();
        }
    }

    /// Stops the controller as its supervisor does (SIGTERM), waits for it
    /// to exit and starts it again on the same data directory and port.
    pub fn restart_gracefully(&mut self) {
        self.stop();
        self.serve();
    }

    /// Stops the controller as its supervisor does (SIGTERM) and waits for
    /// it to exit, for an offline command (`rotate-key`); [`Controller::resume`]
    /// starts it again.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.terminate();
            let code = process.wait_exit(DEADLINE);
            assert_eq!(code, Some(0), "graceful stop: {}", process.log_tail());
        }
    }

    /// Starts a stopped controller again on the same data directory and
    /// port.
    pub fn resume(&mut self) {
        assert!(self.process.is_none(), "the controller is running");
        self.serve();
    }

    /// Starts a stopped or killed controller again on the same data
    /// directory and port without waiting for it to listen
    /// ([`Controller::wait_serving`] waits).
    pub fn respawn(&mut self) {
        assert!(self.process.is_none(), "the controller is running");
        self.spawn_serve();
    }

    /// Starts the controller again on the same data directory and port.
    pub fn restart(&mut self) {
        self.kill9();
        self.serve();
    }

    /// The controller's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("controller.log")).unwrap_or_default()
    }

    /// Runs the `berth` CLI as the admin.
    pub fn berth(&self, args: &[&str]) -> Cli {
        self.berth_with(&self.admin(), args)
    }

    /// Runs the `berth` CLI with another credential bundle.
    pub fn berth_with(&self, bundle: &Path, args: &[&str]) -> Cli {
        self.berth_env(bundle, args, &[])
    }

    /// Runs the `berth` CLI with a credential bundle and extra environment
    /// variables (e.g. `COLUMNS`).
    pub fn berth_env(&self, bundle: &Path, args: &[&str], env: &[(&str, &str)]) -> Cli {
        let output = netns::command_in(self.netns.as_deref(), &bin("berth"))
            .args(args)
            .env("BERTH_CONFIG", bundle)
            .env("BERTH_CONTROLLER", &self.url)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run berth");
        Cli::from(output)
    }

    /// Runs the `berth` CLI as the admin with `input` on standard input.
    pub fn berth_stdin(&self, args: &[&str], input: &str) -> Cli {
        use std::io::Write;
        let mut child = netns::command_in(self.netns.as_deref(), &bin("berth"))
            .args(args)
            .env("BERTH_CONFIG", self.admin())
            .env("BERTH_CONTROLLER", &self.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run berth");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        Cli::from(child.wait_with_output().expect("wait for berth"))
    }

    /// Starts the `berth` CLI in the background (for `logs -f`).
    pub fn berth_spawn(&self, args: &[&str]) -> Running {
        let mut command = netns::command_in(self.netns.as_deref(), &bin("berth"));
        command
            .args(args)
            .env("BERTH_CONFIG", self.admin())
            .env("BERTH_CONTROLLER", &self.url);
        let log = self.dir.path().join(format!("cli-{}.log", ulid_like()));
        Running::spawn(command, &log)
    }

    /// A join token.
    pub fn token(&self, args: &[&str]) -> String {
        let mut all = vec!["token", "create"];
        all.extend_from_slice(args);
        self.berth(&all).ok().trim().to_string()
    }

    /// Deploys a bundle directory and follows it to the end: exit code, the
    /// deployment as JSON (null when none was printed) and stderr.
    pub fn deploy(&self, bundle: &Path) -> (i32, serde_json::Value, String) {
        let result = self.berth(&[
            "deploy",
            "--bundle",
            bundle.to_str().expect("path"),
            "-o",
            "json",
        ]);
        let deployment = serde_json::from_str(&result.stdout).unwrap_or(serde_json::Value::Null);
        (result.code, deployment, result.stderr)
    }

    /// Deploys a bundle holding only `manifest` (a directory `name` under
    /// the test's directory), asserting that it deployed; returns the
    /// deployment.
    pub fn deploy_ok(&self, name: &str, manifest: &str) -> serde_json::Value {
        let bundle = write_bundle(self.dir.path(), name, manifest, &[]);
        let (code, deployment, stderr) = self.deploy(&bundle);
        assert_eq!(code, 0, "{stderr}\n{deployment:#}");
        assert_eq!(deployment["status"], "deployed", "{deployment:#}");
        deployment
    }

    /// `berth deploy --detach -o json` of a bundle directory, with `extra`
    /// arguments; returns at once with the created deployment.
    pub fn deploy_detached(&self, bundle: &Path, extra: &[&str]) -> Cli {
        let mut args = vec![
            "deploy",
            "--bundle",
            bundle.to_str().expect("path"),
            "--detach",
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        self.berth(&args)
    }

    /// The stdout lines a deployment's scripts printed, in order, as
    /// `berth logs` returns them (one host's with `host`).
    pub fn stdout_lines(&self, id: &str, host: Option<&str>) -> Vec<String> {
        let mut args = vec!["logs", id, "-o", "json"];
        args.extend(host.map(|host| ["--host", host]).into_iter().flatten());
        self.berth(&args)
            .ok()
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON log line"))
            .filter(|entry| entry["stream"] == "stdout")
            .map(|entry| entry["line"].as_str().expect("line").to_string())
            .collect()
    }

    /// One deployment as JSON.
    pub fn show(&self, id: &str) -> serde_json::Value {
        self.berth(&["show", id, "-o", "json"]).json()
    }

    /// Waits until a deployment stops changing (via `berth logs -f`,
    /// which ends exactly then) and returns it.
    pub fn wait_quiet(&self, id: &str) -> serde_json::Value {
        let mut follow = self.berth_spawn(&["logs", id, "-f"]);
        assert!(
            follow.wait_exit(DEADLINE).is_some(),
            "deployment {id} did not finish in time:\n{}",
            self.log()
        );
        self.show(id)
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill9();
        if let Some(mount) = self.tmpfs.take() {
            let _ = Command::new("umount").arg(&mount).status();
        }
    }
}

fn ulid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

/// An agent process with its own data directory.
pub struct Agent {
    pub name: String,
    pub dir: PathBuf,
    controller_url: String,
    /// Extra `berth-agent run` arguments (e.g. `--docker-host`).
    pub run_args: Vec<String>,
    /// The network namespace it runs in; `None` for the test's own.
    netns: Option<String>,
    /// Extra environment variables of `join` and `run` (e.g. a skewed
    /// clock from [`clock::skewed`]).
    env: Vec<(String, String)>,
    process: Option<Running>,
}

impl Agent {
    /// Joins `controller` with a fresh one-use token and starts running.
    pub fn join(controller: &Controller, name: &str, labels: &str) -> Agent {
        Agent::join_with_args(controller, name, labels, &[])
    }

    /// Like [`Agent::join`] with extra `berth-agent run` arguments.
    pub fn join_with_args(
        controller: &Controller,
        name: &str,
        labels: &str,
        run_args: &[&str],
    ) -> Agent {
        let token = controller.token(&[]);
        let mut agent = Agent::join_with(controller, name, labels, &token).expect("join");
        agent.run_args = run_args.iter().map(|arg| arg.to_string()).collect();
        agent.start()
    }

    /// Runs `berth-agent join`; returns the agent (not started) or the CLI
    /// result when the join failed.
    pub fn join_with(
        controller: &Controller,
        name: &str,
        labels: &str,
        token: &str,
    ) -> Result<Agent, Cli> {
        Agent::enroll(controller, None, name, labels, token, &[])
    }

    /// Like [`Agent::join_with`], with extra environment variables for
    /// `join` and every later `run`.
    pub fn join_with_env(
        controller: &Controller,
        name: &str,
        labels: &str,
        token: &str,
        env: &[(String, String)],
    ) -> Result<Agent, Cli> {
        Agent::enroll(controller, None, name, labels, token, env)
    }

    /// Like [`Agent::join_with_args`], but joins and runs inside network
    /// namespace `netns`, dialing the controller's address as seen from
    /// there (see [`Controller::start_in`]).
    pub fn join_in(
        controller: &Controller,
        netns: &str,
        name: &str,
        labels: &str,
        run_args: &[&str],
    ) -> Agent {
        let token = controller.token(&[]);
        let mut agent =
            Agent::enroll(controller, Some(netns), name, labels, &token, &[]).expect("join");
        agent.run_args = run_args.iter().map(|arg| arg.to_string()).collect();
        agent.start()
    }

    fn enroll(
        controller: &Controller,
        netns: Option<&str>,
        name: &str,
        labels: &str,
        token: &str,
        env: &[(String, String)],
    ) -> Result<Agent, Cli> {
        let dir = controller
            .dir
            .path()
            .join(format!("agent-{name}-{}", ulid_like()));
        let output = netns::command_in(netns, &bin("berth-agent"))
            .args([
                "join",
                "--controller",
                &controller.url,
                "--name",
                name,
                "--labels",
                labels,
                "--data-dir",
            ])
            .arg(&dir)
            // The token stays out of the process list, as operators are told.
            .env("BERTH_JOIN_TOKEN", token)
            .envs(env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .output()
            .expect("run berth-agent join");
        let cli = Cli::from(output);
        if cli.code != 0 {
            return Err(cli);
        }
        Ok(Agent {
            name: name.to_string(),
            dir,
            controller_url: controller.url.clone(),
            run_args: Vec::new(),
            netns: netns.map(str::to_string),
            env: env.to_vec(),
            process: None,
        })
    }

    /// Starts `berth-agent run` and waits until it is connected.
    pub fn start(mut self) -> Agent {
        self.spawn();
        let process = self.process.as_ref().expect("running");
        process.expect_connected(&format!("agent {}", self.name));
        self
    }

    /// Starts `berth-agent run` without waiting.
    pub fn spawn(&mut self) {
        let log = self.dir.with_extension("log");
        let mut command = netns::command_in(self.netns.as_deref(), &bin("berth-agent"));
        command
            .args(["run", "--controller", &self.controller_url, "--data-dir"])
            .arg(&self.dir)
            .args(&self.run_args)
            .envs(self.env.iter().map(|(key, value)| (key, value)));
        self.process = Some(Running::spawn(command, &log));
    }

    /// The running process.
    pub fn process(&self) -> &Running {
        self.process.as_ref().expect("agent is running")
    }

    pub fn process_mut(&mut self) -> &mut Running {
        self.process.as_mut().expect("agent is running")
    }

    /// `kill -9` the agent.
    pub fn kill9(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill9();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Writes a bundle directory with a manifest and files; returns its path.
pub fn write_bundle(root: &Path, name: &str, manifest: &str, files: &[(&str, &str)]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("bundle dir");
    std::fs::write(dir.join("berth.toml"), manifest).expect("manifest");
    for (path, content) in files {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("dir");
        }
        std::fs::write(&full, content).expect("file");
        if path.ends_with(".sh") {
            std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }
    dir
}

/// The id in a deployment JSON.
pub fn id_of(deployment: &serde_json::Value) -> String {
    deployment["id"]
        .as_str()
        .expect("deployment id")
        .to_string()
}

/// Pids of the processes whose working directory is `dir` (a
/// deployment's work directory: its scripts).
pub fn processes_in(dir: &Path) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd == dir))
        .filter_map(|entry| entry.file_name().to_string_lossy().parse::<u32>().ok())
        .collect()
}

/// Kills (SIGKILL) every process whose working directory is `dir` and
/// returns their pids; used to clean up scripts a killed agent left behind.
pub fn kill_processes_in(dir: &Path) -> Vec<u32> {
    let killed = processes_in(dir);
    for pid in &killed {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    killed
}

/// Pids of processes running `binary` with `dir` among their arguments.
pub fn processes_running(binary: &Path, dir: &Path) -> Vec<u32> {
    let wanted = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|byte| *byte == 0)
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        if args.first().is_some_and(|exe| Path::new(exe) == binary) && args.contains(&wanted) {
            found.push(pid);
        }
    }
    found
}

/// Skips a test that needs something this machine lacks (Docker, Caddy,
/// root for network namespaces): prints why and records it in
/// `target/berth-skipped.log`. Under `BERTH_REQUIRE_ALL=1` (CI) a skip is a
/// failure instead.
pub fn skip(test: &str, reason: &str) {
    assert!(
        std::env::var("BERTH_REQUIRE_ALL").as_deref() != Ok("1"),
        "{test} needs {reason}, and BERTH_REQUIRE_ALL=1 forbids skipping it"
    );
    eprintln!("SKIPPED: {test}: {reason}");
    let log = bin_dir()
        .parent()
        .map(|target| target.join("berth-skipped.log"));
    if let Some(log) = log
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
    {
        use std::io::Write;
        let _ = writeln!(file, "{test}: {reason}");
    }
}

/// Polls `check` until it returns `Some`, at most `tries` times with
/// `pause` between tries, and panics naming `what` otherwise. For the few
/// states no process announces (a controller learning something from the
/// next heartbeat); everything else waits on an event.
pub fn eventually<T>(
    what: &str,
    tries: u32,
    pause: Duration,
    check: impl FnMut() -> Option<T>,
) -> T {
    eventually_or(what, tries, pause, check, String::new)
}

/// Like [`eventually`], adding `context()` (a log, what was seen) to the
/// failure message.
pub fn eventually_or<T>(
    what: &str,
    tries: u32,
    pause: Duration,
    mut check: impl FnMut() -> Option<T>,
    context: impl FnOnce() -> String,
) -> T {
    for _ in 0..tries {
        if let Some(value) = check() {
            return value;
        }
        std::thread::sleep(pause);
    }
    panic!(
        "{what} did not happen within {tries} tries of {pause:?}\n{}",
        context()
    );
}
