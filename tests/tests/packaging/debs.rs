//! The Debian packages from `packaging/build-debs.sh` (built here from the
//! debug binaries, so the test takes seconds, not a release build): their
//! metadata and contents, then a real `dpkg -i` into a Debian chroot made
//! with debootstrap (`berth_tests::chroot`), where the maintainer scripts
//! run for real. systemd is not PID 1 there, so units are enabled and
//! verified but not started; the test starts the agent itself with the
//! command install-agent.sh prints for such hosts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use berth_tests::chroot::{Chroot, has_command};
use berth_tests::{Controller, bin_dir, skip};

use super::{VERSION, agent_view, assert_holds, packaging, run};

/// Runs `build-debs.sh --bin-dir target/debug`; returns the three
/// packages' paths.
pub(super) fn build_debs(out: &Path, version: &str) -> Vec<PathBuf> {
    let built = run(Command::new(packaging().join("build-debs.sh"))
        .arg("--bin-dir")
        .arg(bin_dir())
        .arg("--out")
        .arg(out)
        .args(["--version", version, "--fast"]));
    assert_eq!(built.code, 0, "build-debs.sh failed:\n{}", built.stderr);
    let debs: Vec<PathBuf> = built.stdout.lines().map(PathBuf::from).collect();
    let arch = run(Command::new("dpkg").arg("--print-architecture")).ok();
    for package in ["berth-controller", "berth-agent", "berth"] {
        let want = out.join(format!("{package}_{version}_{}.deb", arch.trim()));
        assert!(debs.contains(&want), "{} not in {debs:?}", want.display());
    }
    debs
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    run(Command::new("dpkg-deb").args(args).arg(deb)).ok()
}

/// What every package holds, per `dpkg-deb --field`, `--contents` and
/// `--info … conffiles`.
fn check_contents(debs: &[PathBuf]) {
    let expected: [(&str, &[&str], Option<&str>); 3] = [
        (
            "berth-controller",
            &[
                "./usr/bin/berth-controller",
                "./usr/lib/systemd/system/berth-controller.service",
                "./etc/berth/controller.env",
            ],
            Some("/etc/berth/controller.env"),
        ),
        (
            "berth-agent",
            &[
                "./usr/bin/berth-agent",
                "./usr/lib/systemd/system/berth-agent.service",
                "./etc/berth/agent.env",
                "./usr/lib/sysctl.d/60-berth.conf",
                "./usr/share/doc/berth-agent/examples/privileged-setup.conf",
            ],
            Some("/etc/berth/agent.env"),
        ),
        (
            "berth",
            &["./usr/bin/berth", "./usr/share/berth/install-agent.sh"],
            None,
        ),
    ];
    for (name, files, conffile) in expected {
        let deb = debs
            .iter()
            .find(|deb| deb.to_string_lossy().contains(&format!("/{name}_")))
            .expect("package");
        let control = dpkg_deb(&["--field"], deb);
        assert_holds(&control, &[&format!("Package: {name}\n"), "Depends: libc6"]);
        assert_holds(&dpkg_deb(&["--contents"], deb), files);
        if let Some(conffile) = conffile {
            assert_holds(&control, &["adduser"]);
            let listed = run(Command::new("dpkg-deb")
                .arg("--info")
                .arg(deb)
                .arg("conffiles"))
            .ok();
            assert_eq!(listed.trim(), conffile);
        }
    }
}

/// Runs `script` in the chroot and returns its stdout; it must succeed.
fn ok(chroot: &Chroot, script: &str) -> String {
    let result = chroot.run(script, &[]);
    assert_eq!(
        result.code, 0,
        "{script}:\n{}\n{}",
        result.stdout, result.stderr
    );
    result.stdout
}

/// Users, directories and enabled units after the install.
fn check_installed(chroot: &Chroot) {
    let facts = ok(
        chroot,
        "getent passwd berth-agent berth-controller | cut -d: -f1,6,7; \
         stat -c '%n %U:%G %a' /var/lib/berth-agent /var/lib/berth-controller; \
         find /var/lib/berth-agent ! -user berth-agent; \
         ls /etc/systemd/system/multi-user.target.wants/",
    );
    for fact in [
        "berth-agent:/var/lib/berth-agent:/usr/sbin/nologin",
        "berth-controller:/var/lib/berth-controller:/usr/sbin/nologin",
        "/var/lib/berth-agent berth-agent:berth-agent 700",
        "/var/lib/berth-controller berth-controller:berth-controller 700",
        "berth-agent.service",
        "berth-controller.service",
    ] {
        assert!(
            facts.lines().any(|line| line == fact),
            "want {fact:?} in\n{facts}"
        );
    }
}

/// `systemd-analyze verify` of the installed units (binaries at their
/// ExecStart paths), with and without the example drop-ins, and their
/// `systemd-analyze security` exposure.
fn check_units(chroot: &Chroot) {
    let verify = "systemd-analyze verify berth-agent.service berth-controller.service 2>&1";
    assert_eq!(ok(chroot, verify), "", "systemd-analyze verify");
    let drop_ins = "mkdir -p /srv/myapp /etc/systemd/system/berth-agent.service.d && \
         cp /usr/share/doc/berth-agent/examples/*.conf /etc/systemd/system/berth-agent.service.d/ && \
         systemd-analyze verify berth-agent.service 2>&1; \
         rm -r /etc/systemd/system/berth-agent.service.d";
    assert_eq!(ok(chroot, drop_ins), "", "the example drop-ins");
    for unit in ["berth-agent", "berth-controller"] {
        let security = ok(
            chroot,
            &format!(
                "systemd-analyze security --offline=yes /lib/systemd/system/{unit}.service | tail -n 1"
            ),
        );
        eprintln!("{unit}: {}", security.trim());
        let exposure: f64 = security
            .split("level for ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|level| level.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level in {security}"));
        assert!(exposure < 5.0, "{unit} exposure {exposure}");
    }
}

/// Starts the agent with `command` and waits until it is connected.
fn start_agent(chroot: &mut Chroot, command: &str, log: &str) {
    chroot
        .spawn(command, log)
        .expect_connected("the installed agent");
}

/// An upgrade keeps a changed conffile and installs the new versions.
fn upgrade(chroot: &Chroot, new_version: &str) {
    ok(
        chroot,
        "echo '# changed here' >> /etc/berth/agent.env && dpkg -i /tmp/new/*.deb",
    );
    let after = ok(
        chroot,
        "dpkg-query -W -f '${Version}\\n' berth-agent berth-controller berth; \
         grep -c 'changed here' /etc/berth/agent.env; ls /etc/berth",
    );
    assert_eq!(
        after,
        format!("{new_version}\n{new_version}\n{new_version}\n1\nagent.env\ncontroller.env\n")
    );
}

/// Remove keeps the state, config and user; purge takes them away.
fn remove_and_purge(chroot: &Chroot) {
    ok(chroot, "dpkg -r berth-agent");
    let removed = ok(
        chroot,
        "test ! -e /usr/bin/berth-agent && getent passwd berth-agent >/dev/null && \
         test -f /var/lib/berth-agent/agent.toml && test -f /etc/berth/agent.env && echo kept",
    );
    assert_eq!(removed, "kept\n");
    ok(chroot, "dpkg -P berth-agent berth-controller berth");
    let purged = ok(
        chroot,
        "getent passwd berth-agent berth-controller; ls -d /var/lib/berth-* /etc/berth \
         /etc/systemd/system/berth-agent.service \
         /etc/systemd/system/multi-user.target.wants/berth-* 2>/dev/null; true",
    );
    assert_eq!(purged, "", "left after purge");
}

/// Without a package, `install-agent.sh --binary` creates the user and
/// writes the binary, agent.env and an enabled unit of its own.
fn install_binary(chroot: &Chroot, controller: &Controller) {
    chroot.copy_in(&bin_dir().join("berth-agent"), "/tmp/berth-agent");
    let token = controller.token(&[]);
    let line = format!(
        "sh /tmp/install-agent.sh --controller {} --binary /tmp/berth-agent --name chroot-2 --no-start",
        controller.url
    );
    let installed = chroot.run(&line, &[("BERTH_JOIN_TOKEN", &token)]);
    assert_eq!(
        installed.code, 0,
        "{}\n{}",
        installed.stdout, installed.stderr
    );
    assert_holds(
        &installed.stdout,
        &[
            "created the system user berth-agent",
            "installed /usr/local/bin/berth-agent",
            "wrote /etc/systemd/system/berth-agent.service",
            "enabled berth-agent.service",
        ],
    );
    let facts = ok(
        chroot,
        "stat -c '%U %a' /var/lib/berth-agent; find /var/lib/berth-agent ! -user berth-agent; \
         grep ^ExecStart= /etc/systemd/system/berth-agent.service; \
         systemctl is-enabled berth-agent.service; \
         systemd-analyze verify berth-agent.service 2>&1",
    );
    assert_eq!(
        facts,
        "berth-agent 700\nExecStart=/usr/local/bin/berth-agent run --data-dir /var/lib/berth-agent $BERTH_AGENT_ARGS\nenabled\n"
    );
}

#[test]
fn debs_install_upgrade_and_purge_in_a_debian_chroot() {
    let test = "debs_install_upgrade_and_purge_in_a_debian_chroot";
    if !has_command("dpkg-deb") {
        return skip(test, "dpkg-deb (apt-get install dpkg)");
    }
    let out = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let old = build_debs(&out.path().join("old"), VERSION);
    eprintln!(
        "build-debs.sh --bin-dir target/debug --fast: {:?}",
        started.elapsed()
    );
    let new_version = format!("{VERSION}+1");
    let new = build_debs(&out.path().join("new"), &new_version);
    check_contents(&old);
    let mut chroot = match Chroot::new() {
        Ok(chroot) => chroot,
        Err(missing) => return skip(test, &missing),
    };
    for (dir, debs) in [("old", &old), ("new", &new)] {
        for deb in debs {
            let name = deb.file_name().expect("name").to_string_lossy();
            chroot.copy_in(deb, &format!("/tmp/{dir}/{name}"));
        }
    }
    chroot.copy_in(
        &packaging().join("install-agent.sh"),
        "/tmp/install-agent.sh",
    );
    ok(
        &chroot,
        "dpkg -i /tmp/old/berth-controller_*.deb /tmp/old/berth_*.deb",
    );

    // install-agent.sh installs the agent package and joins, inside.
    let controller = Controller::start();
    let token = controller.token(&["--labels", "role=chroot"]);
    let line = format!(
        "sh /tmp/install-agent.sh --controller {} --deb /tmp/old/berth-agent_*.deb --name chroot-1 --no-start",
        controller.url
    );
    let first = chroot.run(&line, &[("BERTH_JOIN_TOKEN", &token)]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert_holds(
        &first.stdout,
        &[&format!("installed berth-agent {VERSION}")],
    );
    check_installed(&chroot);
    check_units(&chroot);

    // Again: nothing changes. The agent, started as the script says, runs
    // as berth-agent and connects.
    let second = chroot.run(&line, &[("BERTH_JOIN_TOKEN", &token)]);
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    assert_holds(&second.stdout, &["already joined", "nothing changed"]);
    let start = second
        .stdout
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("runuser -u berth-agent -- "))
        .unwrap_or_else(|| panic!("no start command:\n{}", second.stdout))
        .to_string();
    start_agent(&mut chroot, &start, "agent");
    let view = agent_view(&controller, "chroot-1");
    assert_eq!(view["online"], true, "{view}");
    assert_eq!(view["version"], VERSION, "{view}");
    assert_eq!(view["labels"]["role"], "chroot", "{view}");

    upgrade(&chroot, &new_version);
    chroot.kill_all();
    start_agent(&mut chroot, &start, "agent-upgraded");
    chroot.kill_all();
    remove_and_purge(&chroot);
    install_binary(&chroot, &controller);
}
