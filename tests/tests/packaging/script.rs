//! `packaging/install-agent.sh` on this host, with scratch directories for
//! its prefix, data, config and unit directories (so the real /usr/local,
//! /var/lib and /etc stay untouched) and `--no-start` (systemd is not
//! PID 1 here; the test starts the agent with the command the script
//! prints for such hosts).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_shared::credentials::JoinToken;
use berth_tests::chroot::{has_command, is_root};
use berth_tests::{Agent, Cli, Controller, Running, bin, skip, write_bundle};

use super::{VERSION, agent_view, assert_holds, packaging, run};

/// Runs `install-agent.sh` with the token (if any) in `BERTH_JOIN_TOKEN`.
fn install_agent(token: Option<&str>, args: &[String]) -> Cli {
    let mut command = Command::new("sh");
    command
        .arg(packaging().join("install-agent.sh"))
        .args(args)
        .env_remove("BERTH_JOIN_TOKEN");
    if let Some(token) = token {
        command.env("BERTH_JOIN_TOKEN", token);
    }
    run(&mut command)
}

/// Scratch stand-ins for /usr/local, /var/lib/berth-agent, /etc/berth and
/// /etc/systemd/system.
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// `extra`, then the path options, running the agent as root (so no
    /// user is created on the test machine) and never starting a service.
    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = extra.iter().map(|arg| arg.to_string()).collect();
        for (option, name) in [
            ("--prefix", "prefix"),
            ("--data-dir", "data"),
            ("--config-dir", "etc"),
            ("--unit-dir", "units"),
        ] {
            args.push(option.into());
            args.push(self.path(name).to_string_lossy().into_owned());
        }
        args.extend(["--user", "root", "--no-start"].map(String::from));
        args
    }

    /// Every file and directory below the root with its size, mode and
    /// modification time.
    fn snapshot(&self) -> BTreeMap<PathBuf, (u64, u32, std::time::SystemTime)> {
        use std::os::unix::fs::PermissionsExt;
        let mut seen = BTreeMap::new();
        let mut pending = vec![self.root.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let meta = entry.metadata().expect("metadata");
                if meta.is_dir() {
                    pending.push(entry.path());
                }
                let modified = meta.modified().expect("mtime");
                seen.insert(
                    entry.path(),
                    (meta.len(), meta.permissions().mode(), modified),
                );
            }
        }
        seen
    }
}

fn sha256(path: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(path)).ok();
    out.split_whitespace().next().expect("a digest").to_string()
}

/// The command the script printed for hosts without systemd (`runuser -u
/// USER -- sh -c '...'`): what runs inside the quotes.
fn start_command(stdout: &str) -> String {
    let line = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("runuser -u "))
        .unwrap_or_else(|| panic!("no start command printed:\n{stdout}"));
    let inner = line.split_once("sh -c '").expect("sh -c").1;
    inner.strip_suffix('\'').expect("closing quote").to_string()
}

/// `berth token create` prints the token once, on stdout, and on stderr
/// the line to paste with `<TOKEN>` standing for it.
fn token_with_install_line(controller: &Controller) -> String {
    let created = controller.berth(&["token", "create", "--labels", "role=pkg"]);
    assert_eq!(created.code, 0, "{}", created.stderr);
    let token = created.stdout.trim().to_string();
    let secret = token.split('.').nth(2).expect("bt1.<id>.<secret>.<pin>");
    assert!(
        !created.stderr.contains(secret),
        "the secret is printed once, not again in the hint:\n{}",
        created.stderr
    );
    let pasted = format!(
        "BERTH_JOIN_TOKEN=<TOKEN> sh install-agent.sh --controller {}",
        controller.url
    );
    assert!(
        created
            .stderr
            .lines()
            .any(|line| line.trim_start().starts_with(&pasted)),
        "`berth token create` should print the install line:\n{}",
        created.stderr
    );
    token
}

/// What the first run wrote: the binary, agent.env and a unit that
/// `systemd-analyze verify` accepts.
fn check_installed(scratch: &Scratch, digest: &str) {
    let installed = scratch.path("prefix/bin/berth-agent");
    assert_eq!(sha256(&installed), digest);
    let env = std::fs::read_to_string(scratch.path("etc/agent.env")).expect("agent.env");
    assert!(env.contains("BERTH_AGENT_ARGS=\"\""), "{env}");
    let unit_path = scratch.path("units/berth-agent.service");
    let unit = std::fs::read_to_string(&unit_path).expect("unit");
    let data = scratch.path("data").display().to_string();
    let etc = scratch.path("etc").display().to_string();
    for line in [
        format!(
            "ExecStart={} run --data-dir {data} $BERTH_AGENT_ARGS",
            installed.display()
        ),
        format!("ReadWritePaths={data}"),
        format!("EnvironmentFile=-{etc}/agent.env"),
        format!("ConditionPathExists={data}/agent.toml"),
    ] {
        assert!(unit.lines().any(|have| have == line), "{line}\n{unit}");
    }
    let verified = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit_path));
    let said = format!("{}{}", verified.stdout, verified.stderr);
    assert_eq!(
        (verified.code, said.trim()),
        (0, ""),
        "systemd-analyze verify"
    );
}

/// Starts the agent the way the script said, and deploys a script to it.
fn start_and_deploy(controller: &Controller, scratch: &Scratch, printed: &str) {
    let mut command = Command::new("sh");
    command.args(["-c", &start_command(printed)]);
    let agent = Running::spawn(command, &scratch.root.with_extension("log"));
    agent.expect_connected("the installed agent");
    let view = agent_view(controller, "pkg-1");
    assert_eq!(view["online"], true, "{view}");
    assert_eq!(view["version"], VERSION, "{view}");
    assert_eq!(view["labels"]["role"], "pkg", "{view}");
    assert_eq!(view["labels"]["tier"], "test", "{view}");
    let bundle = write_bundle(
        controller.dir.path(),
        "bundle",
        "app = \"pkg\"\n[target]\nhosts = [\"pkg-1\"]\n[setup]\nrun = [\"./setup.sh\"]\n",
        &[("setup.sh", "#!/bin/sh\necho \"hello from $BERTH_HOST\"\n")],
    );
    let (code, deployment, stderr) = controller.deploy(&bundle);
    assert_eq!(deployment["status"], "deployed", "{stderr}");
    assert_eq!(code, 0);
    let id = deployment["id"].as_str().expect("id");
    assert_eq!(
        controller.stdout_lines(id, None),
        vec!["hello from pkg-1".to_string()]
    );
}

#[test]
fn install_agent_joins_once_and_the_agent_takes_a_deploy() {
    let test = "install_agent_joins_once_and_the_agent_takes_a_deploy";
    if !is_root() {
        return skip(test, "root (install-agent.sh refuses to run without it)");
    }
    if !has_command("systemd-analyze") {
        return skip(test, "systemd-analyze (apt-get install systemd)");
    }
    let controller = Controller::start();
    let token = token_with_install_line(&controller);
    let scratch = Scratch {
        root: controller.dir.path().join("host"),
    };
    let agent_binary = bin("berth-agent");
    let digest = sha256(&agent_binary);
    let joining = [
        "--controller",
        &controller.url,
        "--name",
        "pkg-1",
        "--labels",
        "tier=test",
    ];

    // The first run downloads (a file:// URL, checked against --sha256),
    // joins and installs.
    let url = format!("file://{}", agent_binary.display());
    let mut args = scratch.args(&joining);
    args.extend(["--url", &url, "--sha256", &digest].map(String::from));
    let first = install_agent(Some(&token), &args);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert_holds(
        &first.stdout,
        &[&format!("joined {} as pkg-1", controller.url)],
    );
    check_installed(&scratch, &digest);

    // The same line again (the token is used up by now) changes nothing.
    let before = scratch.snapshot();
    let mut args = scratch.args(&joining);
    args.extend(["--binary".to_string(), agent_binary.display().to_string()]);
    let second = install_agent(Some(&token), &args);
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    assert_holds(
        &second.stdout,
        &[
            &format!("already joined {} as pkg-1", controller.url),
            "nothing changed",
        ],
    );
    assert!(
        !second.stdout.contains("joining https"),
        "{}",
        second.stdout
    );
    assert_eq!(scratch.snapshot(), before, "the second run changed files");

    start_and_deploy(&controller, &scratch, &second.stdout);
}

#[test]
fn install_agent_refuses_bad_input_without_changing_anything() {
    let test = "install_agent_refuses_bad_input_without_changing_anything";
    if !is_root() {
        return skip(test, "root (install-agent.sh refuses to run without it)");
    }
    let controller = Controller::start();
    let scratch = Scratch {
        root: controller.dir.path().join("host"),
    };
    let binary = bin("berth-agent").display().to_string();
    let good = controller.token(&[]);
    let used = controller.token(&[]);
    Agent::join_with(&controller, "took-it", "", &used).expect("join");
    let foreign = JoinToken {
        id: "abc123".into(),
        secret: "s".repeat(43),
        ca_pin: "ab".repeat(32),
        controllers: Vec::new(),
    }
    .encode();
    let text_file = controller.dir.path().join("not-elf");
    std::fs::write(&text_file, "#!/bin/sh\n").expect("write");
    let text_file = text_file.display().to_string();
    let url = controller.url.as_str();
    let zeros = "0".repeat(64);
    let with_binary = |extra: &[&str]| {
        let mut args = vec!["--controller", url, "--binary", &binary];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let cases: Vec<(Option<&str>, Vec<String>, &[&str])> = vec![
        (
            Some("bt1.abc"),
            with_binary(&[]),
            &["join token is garbled", "berth token create"],
        ),
        (
            None,
            with_binary(&[]),
            &["join token is missing", "BERTH_JOIN_TOKEN"],
        ),
        (
            Some(&good),
            [
                "--controller",
                "http://ctl:7443",
                "--binary",
                "/nonexistent",
            ]
            .map(String::from)
            .to_vec(),
            &[
                "'http://ctl:7443' is not a controller address",
                "--binary /nonexistent: no such readable file",
            ],
        ),
        (
            Some(&good),
            ["--controller", url, "--binary", &text_file]
                .map(String::from)
                .to_vec(),
            &["is not a Linux executable"],
        ),
        (
            Some(&good),
            ["--controller", url, "--url", "file:///bin/true"]
                .map(String::from)
                .to_vec(),
            &["is not https; give --sha256"],
        ),
        (
            Some(&good),
            with_binary(&["--sha256", &zeros]),
            &["has SHA-256", "nothing was changed"],
        ),
        (
            Some(&good),
            with_binary(&["--labels", "role"]),
            &["--labels: 'role' is not a label"],
        ),
        (
            Some(&foreign),
            with_binary(&[]),
            &["token was NOT sent", "nothing was changed"],
        ),
        (
            Some(&used),
            with_binary(&[]),
            &["used up", "nothing was changed"],
        ),
    ];
    for (token, args, expected) in cases {
        let borrowed: Vec<&str> = args.iter().map(String::as_str).collect();
        let result = install_agent(token, &scratch.args(&borrowed));
        assert_eq!(
            result.code, 1,
            "{args:?}: {}\n{}",
            result.stdout, result.stderr
        );
        assert_holds(&result.stderr, expected);
        assert_eq!(
            scratch.snapshot(),
            BTreeMap::new(),
            "{args:?} changed files"
        );
    }

    // Not root: refused before anything else (the script comes on stdin,
    // so the unprivileged user need not read the checkout).
    let script = std::fs::File::open(packaging().join("install-agent.sh")).expect("script");
    let output = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-s",
            "--",
        ])
        .args(scratch.args(&["--controller", url, "--binary", &binary]))
        .env("BERTH_JOIN_TOKEN", &good)
        .stdin(script)
        .output()
        .expect("setpriv");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_holds(&stderr, &["must run as root", "sudo"]);
    assert_eq!(scratch.snapshot(), BTreeMap::new());
}

#[test]
fn install_agent_writes_what_the_packages_ship() {
    // The script is pasted onto servers alone, so it carries its own copy
    // of the unit and agent.env; they must not drift from packaging/.
    let script = packaging().join("install-agent.sh");
    let print = |args: &[&str]| run(Command::new("sh").arg(&script).args(args)).ok();
    let shipped = |path: &str| std::fs::read_to_string(packaging().join(path)).expect(path);
    assert_eq!(
        print(&["--print-unit", "--prefix", "/usr"]),
        shipped("systemd/berth-agent.service"),
        "install-agent.sh's unit differs from systemd/berth-agent.service"
    );
    assert_eq!(
        print(&["--print-config"]),
        shipped("config/agent.env"),
        "install-agent.sh's agent.env differs from config/agent.env"
    );
}
