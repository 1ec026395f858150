//! `berth-controller init` and `berth-agent join` run as root (as the
//! README shows) into a data directory that belongs to the service user
//! (as postinst leaves `/var/lib/berth-*`) give every file to that user,
//! so the daemon started as that user reads them; a daemon that may not
//! read one of its files names the user, the file and the fix instead of
//! guessing that the directory was never initialized or joined.
//! `nobody` stands in for the service users.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use berth_tests::chroot::{has_command, is_root};
use berth_tests::{Controller, DEADLINE, Running, bin, skip};

use super::{assert_holds, run};

const NOBODY: u32 = 65534;

/// A directory owned by `nobody`, mode 0700, as postinst makes one.
fn service_dir(parent: &Path, name: &str) -> std::path::PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir(&dir).expect("create the data directory");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).expect("chown");
    dir
}

/// Every path under `dir` whose owner is not `nobody`.
fn not_nobodys(dir: &Path) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        if meta.uid() != NOBODY || meta.gid() != NOBODY {
            wrong.push(format!(
                "{} ({}:{})",
                path.display(),
                meta.uid(),
                meta.gid()
            ));
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).expect("list") {
                pending.push(entry.expect("entry").path());
            }
        }
    }
    wrong
}

/// `program args` as `nobody`. `setpriv` execs the program (`runuser`
/// would fork and wait), so the process the test holds, and kills on
/// drop, is the program itself.
fn as_nobody(program: &str, args: &[&str]) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(bin(program))
        .args(args);
    command
}

#[test]
fn init_and_join_as_root_hand_the_files_to_the_directory_owner() {
    const TEST: &str = "init_and_join_as_root_hand_the_files_to_the_directory_owner";
    if !is_root() || !has_command("setpriv") {
        return skip(
            TEST,
            "root and setpriv (util-linux), to run the daemons as another user",
        );
    }
    let scratch = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");

    // The controller: init as root, then serve as the directory's owner.
    let data = service_dir(scratch.path(), "controller");
    let data_arg = data.to_str().expect("utf-8");
    let init = run(Command::new(bin("berth-controller")).args([
        "init",
        "--data-dir",
        data_arg,
        "--name",
        "127.0.0.1",
    ]));
    assert_eq!(init.code, 0, "{}", init.stderr);
    assert_holds(
        &init.stderr,
        &[&format!("gave the files in {data_arg} to nobody")],
    );
    assert_eq!(not_nobodys(&data), Vec::<String>::new(), "not handed over");
    let serve = as_nobody(
        "berth-controller",
        &["serve", "--data-dir", data_arg, "--listen", "127.0.0.1:0"],
    );
    let serve = Running::spawn(serve, &scratch.path().join("serve.log"));
    assert!(
        serve.stdout.wait_for("listening on", DEADLINE).is_some(),
        "the controller did not start as nobody:\n{}",
        serve.log_tail()
    );
    drop(serve);

    // A key left to root (what init did before) is named, with the fix.
    std::os::unix::fs::chown(data.join("pki/ca.key"), Some(0), Some(0)).expect("chown");
    let refused = run(&mut as_nobody(
        "berth-controller",
        &["serve", "--data-dir", data_arg, "--listen", "127.0.0.1:0"],
    ));
    assert_ne!(refused.code, 0);
    assert_holds(
        &refused.stderr,
        &[
            &format!(
                "permission denied for user nobody on {data_arg}/pki/ca.key (owned by root, mode 600)"
            ),
            &format!("chown -R nobody: {data_arg}"),
        ],
    );
    assert!(
        !refused.stderr.contains("is this a data directory"),
        "{}",
        refused.stderr
    );

    // The agent: join as root, then the identity is readable as the owner.
    let controller = Controller::start();
    let token = controller.token(&[]);
    let agent_dir = service_dir(scratch.path(), "agent");
    let agent_arg = agent_dir.to_str().expect("utf-8");
    let joined = run(Command::new(bin("berth-agent"))
        .args([
            "join",
            "--controller",
            &controller.url,
            "--data-dir",
            agent_arg,
        ])
        .args(["--name", "owned"])
        .env("BERTH_JOIN_TOKEN", &token));
    assert_eq!(joined.code, 0, "{}", joined.stderr);
    assert_holds(
        &joined.stderr,
        &[&format!("gave the files in {agent_arg} to nobody")],
    );
    assert_eq!(
        not_nobodys(&agent_dir),
        Vec::<String>::new(),
        "not handed over"
    );
    std::os::unix::fs::chown(agent_dir.join("agent.toml"), Some(0), Some(0)).expect("chown");
    let refused = run(&mut as_nobody(
        "berth-agent",
        &["run", "--data-dir", agent_arg],
    ));
    assert_ne!(refused.code, 0);
    assert_holds(
        &refused.stderr,
        &[&format!(
            "permission denied for user nobody on {agent_arg}/agent.toml (owned by root, mode 600)"
        )],
    );
    assert!(
        !refused.stderr.contains("has this agent joined"),
        "{}",
        refused.stderr
    );
}
