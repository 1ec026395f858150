//! Users and roles through the real binaries: an admin adds a viewer and
//! issues its credential; the viewer reads but may not change anything; a
//! role change and a disable apply to the user's next call; the last admin
//! cannot be demoted; API tokens are made, listed and revoked.

use berth_tests::Controller;

/// A deployment id no deployment has.
const NO_SUCH: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

#[test]
fn roles_apply_to_the_next_call_and_a_disabled_user_is_refused() {
    let controller = Controller::start();
    let boss = controller.berth(&["users", "add", "ana", "--role", "boss"]);
    assert_eq!(boss.code, 2, "{}", boss.stderr);
    assert!(
        boss.stderr
            .contains("role `boss` is not one of viewer, operator, admin"),
        "{}",
        boss.stderr
    );
    let added = controller.berth(&["users", "add", "ana", "--role", "viewer", "-o", "json"]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert_eq!(added.printed()["role"], "viewer", "{}", added.stdout);
    let bundle = controller.dir.path().join("ana.conf");
    let bundle_text = bundle.to_string_lossy().to_string();
    let issued = controller.berth(&["users", "credential", "ana", "--out", &bundle_text]);
    assert_eq!(issued.code, 0, "{}", issued.stderr);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&bundle)
            .expect("bundle written")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the bundle holds a private key");

    // A viewer reads, and is refused a change with exit 3 and the code.
    let ana = |args: &[&str]| controller.berth_with(&bundle, args);
    let whoami = ana(&["whoami"]);
    assert!(
        whoami.stdout.contains("ana") && whoami.stdout.contains("viewer"),
        "{}",
        whoami.stdout
    );
    assert_eq!(ana(&["ls"]).code, 0);
    let refused = ana(&["cancel", NO_SUCH, "-o", "json"]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert_eq!(refused.printed()["error"]["code"], "auth/permission-denied");
    assert!(
        refused
            .stderr
            .contains("ana has role viewer; this needs operator"),
        "{}",
        refused.stderr
    );
    assert_eq!(ana(&["users", "ls"]).code, 3, "users are for admins");

    // Made an operator, the same call gets past the role check.
    let promoted = controller.berth(&["users", "set-role", "ana", "operator"]);
    assert_eq!(promoted.code, 0, "{}", promoted.stderr);
    let reached = ana(&["cancel", NO_SUCH]);
    assert_eq!(
        reached.code, 4,
        "now only the deployment is missing: {}",
        reached.stderr
    );

    // Disabled, every call of the user is refused, and enabled again works.
    assert_eq!(controller.berth(&["users", "disable", "ana"]).code, 0);
    let disabled = ana(&["ls", "-o", "json"]);
    assert_eq!(disabled.code, 3, "{}", disabled.stderr);
    assert_eq!(disabled.printed()["error"]["code"], "auth/disabled");
    assert_eq!(controller.berth(&["users", "enable", "ana"]).code, 0);
    assert_eq!(ana(&["ls"]).code, 0);

    // The admin that `init` made is a user too, and the last admin stays.
    let users = controller.berth(&["users", "ls", "-o", "json"]).json();
    let names: Vec<&str> = users
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|user| user["name"].as_str())
        .collect();
    assert_eq!(names, ["admin", "ana"], "{users}");
    let last = controller.berth(&["users", "set-role", "admin", "viewer", "-o", "json"]);
    assert_eq!(last.code, 5, "{}", last.stderr);
    assert_eq!(last.printed()["error"]["code"], "user/last-admin");

    // A web password: read from standard input, at least 12 characters,
    // and only "set" is ever shown.
    let short = controller.berth_stdin(&["users", "set-password", "ana"], "short\n");
    assert_eq!(short.code, 2, "{}", short.stderr);
    let set = controller.berth_stdin(
        &["users", "set-password", "ana", "-o", "json"],
        "correct horse battery staple\n",
    );
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert_eq!(set.printed()["password_set"], true);
    assert!(
        !set.stdout.contains("argon2"),
        "no hash is shown: {}",
        set.stdout
    );

    // Removed, its credential stops working.
    assert_eq!(controller.berth(&["users", "rm", "ana"]).code, 0);
    assert_eq!(ana(&["ls"]).code, 3);
    let audit = controller.berth(&["audit", "-o", "json"]).stdout;
    for action in [
        "user.add",
        "user.credential",
        "user.set-role",
        "user.disable",
        "user.rm",
    ] {
        assert!(audit.contains(action), "{action} is audited: {audit}");
    }
}

#[test]
fn api_tokens_are_shown_once_listed_without_secret_and_revoked() {
    let controller = Controller::start();
    let created = controller.berth(&["api-tokens", "create", "--name", "ci", "--expires", "90d"]);
    assert_eq!(created.code, 0, "{}", created.stderr);
    let token = created.stdout.trim().to_string();
    assert!(token.starts_with("bta_") && token.len() > 40, "{token}");
    let listed = controller.berth(&["api-tokens", "ls", "-o", "json"]);
    let tokens = listed.printed();
    let first = &tokens[0];
    assert_eq!(first["name"], "ci");
    assert_eq!(first["user"], "admin");
    assert_eq!(first["state"], "valid");
    assert!(
        token.starts_with(first["prefix"].as_str().unwrap_or("?")),
        "{tokens}"
    );
    let secret = token.rsplit('_').next().unwrap_or_default();
    assert!(
        !listed.stdout.contains(secret),
        "the secret is never listed again"
    );
    let id = first["id"].as_str().unwrap_or_default();
    assert_eq!(controller.berth(&["api-tokens", "revoke", id]).code, 0);
    let after = controller.berth(&["api-tokens", "ls", "-o", "json"]).json();
    assert_eq!(after[0]["state"], "revoked", "{after}");
    let unknown = controller.berth(&["api-tokens", "revoke", "nosuchtoken"]);
    assert_eq!(unknown.code, 4, "{}", unknown.stderr);
    let bad = controller.berth(&["api-tokens", "create", "--name", "no spaces"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn the_first_admin_can_be_replaced_and_its_credential_then_stops_working() {
    let controller = Controller::start();
    assert_eq!(
        controller
            .berth(&["users", "add", "bo", "--role", "admin"])
            .code,
        0
    );
    let bo = controller.dir.path().join("bo.conf");
    let out = bo.to_str().expect("path");
    assert_eq!(
        controller
            .berth(&["users", "credential", "bo", "--out", out])
            .code,
        0
    );
    let removed = controller.berth_with(&bo, &["users", "rm", "admin"]);
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    let refused = controller.berth(&["ls"]);
    assert_eq!(
        refused.code, 3,
        "the removed admin's bundle: {}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("no longer exists"),
        "{}",
        refused.stderr
    );
    assert_eq!(controller.berth_with(&bo, &["ls"]).code, 0);
}
