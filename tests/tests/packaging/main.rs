//! Installing berth on servers (`packaging/`): the Debian packages build,
//! install, upgrade (keeping a changed conffile), are removed and purged in
//! a Debian chroot, with units that pass `systemd-analyze verify`
//! (`debs.rs`); `install-agent.sh` joins once, changes nothing when run
//! again, refuses bad input before changing anything, and the agent it
//! installed takes a deploy (`script.rs`); the controller image's
//! entrypoint initializes an empty data directory once, and its health
//! check follows the controller (`image.rs`).

mod debs;
mod image;
mod machine;
mod ownership;
mod restart;
mod sandbox;
mod script;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_tests::chroot::has_command;
use berth_tests::{Cli, Controller, skip};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .join("packaging")
}

/// Runs `command` to its end with no input.
fn run(command: &mut Command) -> Cli {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("run {command:?}: {err}"));
    Cli {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Asserts that `text` holds every one of `needles`.
fn assert_holds(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "want {needle:?} in:\n{text}");
    }
}

/// One agent as `berth agents ls -o json` shows it.
fn agent_view(controller: &Controller, name: &str) -> serde_json::Value {
    let agents = controller.berth(&["agents", "ls", "-o", "json"]).json();
    agents
        .as_array()
        .expect("array")
        .iter()
        .find(|agent| agent["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in `berth agents ls`: {agents}"))
        .clone()
}

#[test]
fn packaging_scripts_pass_shellcheck() {
    if !has_command("shellcheck") {
        return skip(
            "packaging_scripts_pass_shellcheck",
            "shellcheck (apt-get install shellcheck)",
        );
    }
    let dir = packaging();
    let mut posix = vec![
        dir.join("install-agent.sh"),
        dir.join("docker-entrypoint.sh"),
    ];
    for package in ["berth-controller", "berth-agent"] {
        for script in ["postinst", "prerm", "postrm"] {
            posix.push(dir.join("debian").join(package).join(script));
        }
    }
    let checked = run(Command::new("shellcheck").arg("--shell=sh").args(&posix));
    assert_eq!(checked.code, 0, "{}", checked.stdout);
    let checked = run(Command::new("shellcheck").arg(dir.join("build-debs.sh")));
    assert_eq!(checked.code, 0, "{}", checked.stdout);
    // demo.sh sources scripts/toolchain.sh, named from the workspace root.
    let checked = run(Command::new("shellcheck")
        .arg("-x")
        .arg("packaging/demo.sh")
        .current_dir(dir.parent().expect("workspace")));
    assert_eq!(checked.code, 0, "{}", checked.stdout);
}
