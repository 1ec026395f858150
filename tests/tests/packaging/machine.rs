//! The README's install path, followed to the letter on a booted Debian
//! (systemd 252 as PID 1 under `systemd-nspawn`, `berth_tests::nspawn`),
//! on a private bridge in 198.18.0.0/15: the controller's packages with
//! `apt install`, `berth-controller init` as root, `systemctl start`; on a
//! workstation (another namespace on the bridge) `berth token create`
//! with the copied `admin.conf`; then `install-agent.sh --deb` on the
//! server, and the first deploys from the workstation (`examples/hello`
//! among them). The controller never restarts (init handed its files to
//! `berth-controller`), a script refused by the agent's sandbox names the
//! drop-in in `berth deploy`'s error, `systemctl restart berth-agent`
//! mid-deploy fails the deploy as interrupted by the restart, not
//! `canceled`, and a failed `caddy-api.service` is retried by the next run
//! of `install-agent.sh`.
//!
//! The deploys are script bundles: the machine has no way to the Debian
//! mirror to install Docker, and running Docker inside nspawn would need
//! more of the host than a test should take.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_tests::chroot::is_root;
use berth_tests::netns::{Fleet, command_in};
use berth_tests::nspawn::Machine;
use berth_tests::{Cli, DEADLINE, Running, bin, eventually, skip, write_bundle};

use super::debs::build_debs;
use super::{VERSION, assert_holds};

const TEST: &str = "the_readme_install_path_on_a_booted_debian";

/// The workstation: `berth` in its namespace with the copied credential.
struct Workstation<'a> {
    netns: &'a str,
    config: &'a Path,
}

impl Workstation<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = command_in(Some(self.netns), &bin("berth"));
        command.args(args).env("BERTH_CONFIG", self.config);
        command
    }

    fn berth(&self, args: &[&str]) -> Cli {
        super::run(&mut self.command(args))
    }
}

#[test]
fn the_readme_install_path_on_a_booted_debian() {
    if !is_root() {
        return skip(TEST, "root, to boot a machine with systemd-nspawn");
    }
    let Some(fleet) = Fleet::start(TEST, &["server", "workstation"]) else {
        return;
    };
    let machine = match Machine::boot(
        fleet.netns("server"),
        &format!("berth-{}", std::process::id()),
    ) {
        Ok(machine) => machine,
        Err(missing) => return skip(TEST, &missing),
    };
    let scratch = tempfile::tempdir().expect("tempdir");
    let debs = build_debs(&scratch.path().join("debs"), VERSION);
    for deb in &debs {
        let name = deb
            .file_name()
            .and_then(|name| name.to_str())
            .expect("name");
        machine.copy_in(deb, &format!("/root/{name}"));
    }
    let packaging = super::packaging();
    machine.copy_in(
        &packaging.join("install-agent.sh"),
        "/root/install-agent.sh",
    );
    let server = fleet.ip("server");

    // On the controller host, as root.
    machine.ok(
        "cd /root && apt install -y ./berth-controller_*.deb ./berth_*.deb",
        &[],
    );
    let init = machine.run(
        &format!("berth-controller init --data-dir /var/lib/berth-controller --name {server}"),
        &[],
    );
    assert_eq!(init.code, 0, "{}", init.stderr);
    assert_holds(
        &init.stderr,
        &["gave the files in /var/lib/berth-controller to berth-controller"],
    );
    machine.ok("systemctl start berth-controller", &[]);

    // On the workstation, with admin.conf copied over.
    let config = scratch.path().join("config");
    std::fs::copy(
        machine.path("/var/lib/berth-controller/admin.conf"),
        &config,
    )
    .expect("copy admin.conf");
    let workstation = Workstation {
        netns: fleet.netns("workstation"),
        config: &config,
    };
    // The unit is started (Type=exec) before it listens; nothing on the
    // workstation can wait for that except asking.
    eventually(
        "the controller answering the workstation",
        100,
        Duration::from_millis(200),
        || (workstation.berth(&["whoami"]).code == 0).then_some(()),
    );
    let token = workstation.berth(&["token", "create", "--labels", "role=web"]);
    assert_eq!(token.code, 0, "{}", token.stderr);
    let token = token.stdout.trim().to_string();

    // On the server, as root: the line `berth token create` printed.
    let arch = super::run(Command::new("dpkg").arg("--print-architecture")).ok();
    let install = machine.run(
        &format!(
            "cd /root && sh install-agent.sh --controller https://{server}:7443 --deb berth-agent_{VERSION}_{}.deb",
            arch.trim()
        ),
        &[("BERTH_JOIN_TOKEN", &token)],
    );
    assert_eq!(
        install.code,
        0,
        "{}\n{}\n{}",
        install.stdout,
        install.stderr,
        machine.journal("berth-agent")
    );
    assert_holds(
        &format!("{}{}", install.stdout, install.stderr),
        &["is connected to the controller"],
    );
    let agents = workstation.berth(&["agents", "ls", "-o", "json"]);
    assert_holds(&agents.stdout, &["\"online\": true", "role"]);

    // The first deploy: a script writing its work directory and /tmp.
    let manifest =
        "app = \"first\"\n[target]\nlabels = { role = \"web\" }\n[setup]\nrun = [\"./setup.sh\"]\n";
    let script = "#!/bin/sh\nset -eu\necho \"$BERTH_VERSION\" > \"$BERTH_WORK_DIR/installed\"\necho scratch > /tmp/first\necho \"deployed on $BERTH_HOST as $(id -un)\"\n";
    let bundle = write_bundle(scratch.path(), "first", manifest, &[("setup.sh", script)]);
    let deploy = workstation.berth(&["deploy", "--bundle", bundle.to_str().expect("path")]);
    assert_eq!(deploy.code, 0, "{}\n{}", deploy.stdout, deploy.stderr);
    assert_holds(&deploy.stdout, &["is deployed"]);
    let id = deploy
        .stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix("deployment ")?
                .strip_suffix(" is deployed")
        })
        .expect("the deployment's id");
    let logs = workstation.berth(&["logs", id]);
    assert_holds(&logs.stdout, &["as berth-agent"]);

    // The shipped script example works under the packaged unit too.
    let hello = super::packaging().join("../examples/hello");
    let deploy = workstation.berth(&["deploy", "--bundle", hello.to_str().expect("path")]);
    assert_eq!(deploy.code, 0, "{}\n{}", deploy.stdout, deploy.stderr);
    assert_holds(&deploy.stdout, &["is deployed"]);

    // A write the sandbox refuses is named in the deploy's error.
    let manifest = "app = \"boxed\"\n[target]\nlabels = { role = \"web\" }\n[setup]\nrun = [\"touch /srv/blocked\"]\n";
    let bundle = write_bundle(scratch.path(), "boxed", manifest, &[]);
    let refused = workstation.berth(&["deploy", "--bundle", bundle.to_str().expect("path")]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert_holds(
        &format!("{}{}", refused.stdout, refused.stderr),
        &[
            "Read-only file system",
            "writable-paths.conf",
            "ReadWritePaths=/srv",
        ],
    );

    // `systemctl restart berth-agent` (an upgrade does the same) mid-deploy.
    let manifest = "app = \"slow\"\n[target]\nlabels = { role = \"web\" }\n[setup]\nrun = [\"echo working; sleep 60\"]\n";
    let bundle = write_bundle(scratch.path(), "slow", manifest, &[]);
    let mut slow = Running::spawn(
        workstation.command(&["deploy", "--bundle", bundle.to_str().expect("path")]),
        &scratch.path().join("slow.log"),
    );
    assert!(
        slow.stdout.wait_for("working", DEADLINE).is_some(),
        "{}",
        slow.log_tail()
    );
    machine.ok("systemctl restart berth-agent", &[]);
    assert_eq!(slow.wait_exit(DEADLINE), Some(1), "{}", slow.log_tail());
    let said = slow.stdout.all().join("\n");
    assert_holds(
        &said,
        &["restarted while this task was running", "is failed"],
    );
    assert!(
        !said.contains("canceled"),
        "a restart reported as a cancel:\n{said}"
    );

    // A caddy-api.service whose start failed is retried by the next run of
    // install-agent.sh. Debian's caddy binary and unit come from the host
    // (the machine has no mirror); a broken saved config makes it fail.
    retry_caddy(&machine, server, &arch);

    // The controller started once and never restarted.
    let restarts = machine.ok(
        "systemctl show berth-controller -p NRestarts --value && systemctl is-active berth-controller",
        &[],
    );
    assert_eq!(
        restarts.split_whitespace().collect::<Vec<_>>(),
        ["0", "active"]
    );
}

/// A failed `caddy-api.service` (enabled by an earlier run, its start
/// failed) is started again by the next run of `install-agent.sh
/// --with-caddy`: first still failing (a warning naming the journal, the
/// agent kept running), then, the cause fixed, started.
fn retry_caddy(machine: &Machine, server: &str, arch: &str) {
    for (from, to) in [
        ("/usr/bin/caddy", "/usr/bin/caddy"),
        (
            "/lib/systemd/system/caddy-api.service",
            "/lib/systemd/system/caddy-api.service",
        ),
    ] {
        assert!(
            Path::new(from).exists(),
            "{from} is missing: the test copies Debian's caddy from this host (apt-get install caddy)"
        );
        machine.copy_in(Path::new(from), to);
    }
    // Caddy's admin API listens on `localhost:2019`; debootstrap leaves
    // no /etc/hosts, which a real Debian install has.
    machine.ok(
        "chmod 0755 /usr/bin/caddy && { grep -qw localhost /etc/hosts 2>/dev/null || echo '127.0.0.1 localhost' >> /etc/hosts; }",
        &[],
    );
    machine.ok(
        "useradd --system --home-dir /var/lib/caddy --create-home --shell /usr/sbin/nologin caddy \
         && install -d -o caddy -g caddy /var/lib/caddy/.config/caddy \
         && echo 'not json' > /var/lib/caddy/.config/caddy/autosave.json \
         && systemctl daemon-reload && systemctl enable caddy-api.service",
        &[],
    );
    let failed = machine.run("systemctl start caddy-api.service", &[]);
    assert_ne!(
        failed.code, 0,
        "caddy-api.service started with a broken config"
    );
    let install = format!(
        "cd /root && sh install-agent.sh --controller https://{server}:7443 --deb berth-agent_{VERSION}_{}.deb --with-caddy",
        arch.trim()
    );
    let again = machine.run(&install, &[]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert_holds(
        &again.stderr,
        &[
            "caddy-api.service did not start",
            "journalctl -u caddy-api.service",
        ],
    );
    machine.ok("rm /var/lib/caddy/.config/caddy/autosave.json", &[]);
    let fixed = machine.run(&install, &[]);
    assert_eq!(fixed.code, 0, "{}\n{}", fixed.stdout, fixed.stderr);
    let said = format!("{}{}", fixed.stdout, fixed.stderr);
    assert!(
        said.contains("started caddy-api.service"),
        "{said}\n{}",
        machine.journal("caddy-api.service")
    );
    machine.ok("systemctl is-active caddy-api.service berth-agent", &[]);
}
