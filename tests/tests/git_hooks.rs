//! Git pushes in, through the real binaries and a real git repository
//! (a local bare repository a build agent fetches over `file://`):
//!
//! - a GitHub-signed push of `main` is accepted; the build agent fetches
//!   the commit, its `deploy/web` directory is the bundle, and the
//!   deployment runs the files of that commit on the app's host,
//!   recording the commit, ref, message, author, commit time and trigger
//!   `webhook`;
//! - a wrong signature and a replayed delivery id are refused (401, 409),
//!   counted, and deploy nothing; a push of another branch is ignored;
//! - a GitLab tag push with its token deploys the tag's commit, a wrong
//!   token is refused; a commit without `berth.toml` at the path fails its
//!   push with the reason, shown by `berth hook ls`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_tests::http::{Api, Body, Reply};
use berth_tests::webhook_receiver::hmac_sha256;
use berth_tests::{Agent, Controller, eventually_or};
use serde_json::{Value, json};

/// Runs git in `dir`; its trimmed output.
fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Ana Dev",
            "-c",
            "user.email=ana@example.com",
        ])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A bare repository with a work tree; `commit` writes `deploy/web`.
struct Repo {
    bare: PathBuf,
    work: PathBuf,
    ran: PathBuf,
}

impl Repo {
    fn new(root: &Path) -> Repo {
        let bare = root.join("origin.git");
        let work = root.join("work");
        std::fs::create_dir_all(&work).expect("mkdir");
        git(
            root,
            &[
                "init",
                "-q",
                "--bare",
                "-b",
                "main",
                bare.to_str().expect("path"),
            ],
        );
        git(&work, &["init", "-q", "-b", "main"]);
        Repo {
            bare,
            work,
            ran: root.join("ran"),
        }
    }

    fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// Commits `deploy/web` saying `hello` (with a manifest unless
    /// `manifest` is false) and pushes it to `refspec`; the commit id.
    fn commit(&self, hello: &str, manifest: bool, refspec: &str) -> String {
        let dir = self.work.join("deploy/web");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let toml = dir.join("berth.toml");
        if manifest {
            let text = format!(
                "app = \"web\"\n[target]\nhosts = [\"h1\"]\n[setup]\nrun = [\"cat hello.txt >> {}\"]\n",
                self.ran.display()
            );
            std::fs::write(&toml, text).expect("manifest");
        } else {
            let _ = std::fs::remove_file(&toml);
        }
        std::fs::write(dir.join("hello.txt"), format!("{hello}\n")).expect("hello");
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "-m", &format!("say {hello}")]);
        let commit = git(&self.work, &["rev-parse", "HEAD"]);
        git(
            &self.work,
            &[
                "push",
                "-q",
                "-f",
                self.bare.to_str().expect("path"),
                refspec,
            ],
        );
        commit
    }

    fn ran(&self) -> String {
        std::fs::read_to_string(&self.ran).unwrap_or_default()
    }
}

fn github_push(git_ref: &str, commit: &str, message: &str) -> Value {
    json!({
        "ref": git_ref,
        "before": "0".repeat(40),
        "after": commit,
        "repository": { "full_name": "acme/web" },
        "head_commit": { "id": commit, "message": message, "timestamp": "2026-12-01T09:00:00Z",
            "author": { "name": "Ana Dev", "email": "ana@example.com" } },
    })
}

/// POSTs a delivery to a hook's path with `headers`.
fn deliver(api: &Api, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    api.request("POST", path, &all, Body::Text(body))
}

fn github_headers<'a>(signature: &'a str, delivery: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", delivery),
        ("X-Hub-Signature-256", signature),
    ]
}

fn sign(secret: &str, body: &str) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), body.as_bytes()))
    )
}

/// The hook as `berth hook ls` lists it.
fn listed(controller: &Controller, id: &str) -> Value {
    let hooks = controller.berth(&["hook", "ls", "-o", "json"]).json();
    hooks
        .as_array()
        .and_then(|hooks| hooks.iter().find(|hook| hook["id"] == id).cloned())
        .unwrap_or(Value::Null)
}

/// Waits until the hook's newest push is no longer queued or fetching.
fn settled_push(controller: &Controller, id: &str, pushes: usize) -> Value {
    eventually_or(
        "the push settled",
        240,
        Duration::from_millis(250),
        || {
            let hook = listed(controller, id);
            let all = hook["pushes"].as_array().cloned().unwrap_or_default();
            (all.len() >= pushes && matches!(all[0]["state"].as_str(), Some("deployed" | "failed")))
                .then(|| all[0].clone())
        },
        || format!("{:#}\n{}", listed(controller, id), controller.log()),
    )
}

/// `berth hook add` for app `web` in `production` from the repository's
/// `deploy/web`, with `args`; its JSON answer.
fn add_hook(controller: &Controller, repo: &Repo, args: &[&str]) -> Value {
    let url = repo.url();
    let mut all = vec![
        "hook",
        "add",
        "--app",
        "web",
        "--env",
        "production",
        "--repo",
        &url,
        "--path",
        "deploy/web",
    ];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    controller.berth(&all).json()
}

#[test]
fn signed_pushes_are_fetched_by_a_build_agent_and_deployed() {
    let controller = Controller::start();
    let _host = Agent::join(&controller, "h1", "role=web");
    let _builder = Agent::join(&controller, "builder", "role=build");
    let repo = Repo::new(controller.dir.path());
    let first = repo.commit("v1", true, "HEAD:main");

    let created = add_hook(
        &controller,
        &repo,
        &["--ref", "main", "--build-labels", "role=build"],
    );
    let (id, secret, path) = (
        created["hook"]["id"].as_str().expect("id").to_string(),
        created["secret"].as_str().expect("secret").to_string(),
        created["url"].as_str().expect("url").to_string(),
    );
    assert_eq!(path, format!("/api/v1/hooks/git/{id}"));
    assert!(!controller.berth(&["hook", "ls"]).ok().contains(&secret));
    let api = Api::new(&controller.http_url, None);

    let body = github_push("refs/heads/main", &first, "say v1").to_string();
    let accepted = deliver(
        &api,
        &path,
        &github_headers(&sign(&secret, &body), "d-1"),
        &body,
    );
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    assert_eq!(accepted.json()["outcome"], "accepted");
    let push = settled_push(&controller, &id, 1);
    assert_eq!(push["state"], "deployed", "{push:#}");
    let deployment_id = push["deployment"].as_str().expect("deployment").to_string();
    let shown = controller.wait_quiet(&deployment_id);
    assert_eq!(shown["status"], "deployed", "{shown:#}");
    assert_eq!(
        (
            shown["commit_sha"].as_str(),
            shown["source_ref"].as_str(),
            shown["message"].as_str(),
            shown["trigger"].as_str(),
        ),
        (
            Some(first.as_str()),
            Some("main"),
            Some("say v1"),
            Some("webhook")
        )
    );
    assert_eq!(shown["environment"], "production");
    assert_eq!(
        (
            shown["commit_author"].as_str(),
            shown["commit_time"].as_str()
        ),
        (Some("Ana Dev"), Some("2026-12-01T09:00:00.000Z")),
        "the push's author and commit time, for the lead time"
    );
    assert_eq!(shown["version"], &first[..12]);
    assert_eq!(shown["triggered_by"], format!("hook:{id}"));
    assert_eq!(repo.ran(), "v1\n", "the host ran the commit's files");

    // A wrong signature and a replayed delivery: refused, counted, nothing runs.
    let forged = deliver(
        &api,
        &path,
        &github_headers(&sign("not-the-secret", &body), "d-2"),
        &body,
    );
    assert_eq!(
        (forged.status, forged.code()),
        (401, "hook/signature".to_string()),
        "{}",
        forged.body
    );
    let replayed = deliver(
        &api,
        &path,
        &github_headers(&sign(&secret, &body), "d-1"),
        &body,
    );
    assert_eq!(
        (replayed.status, replayed.code()),
        (409, "hook/replayed".to_string()),
        "{}",
        replayed.body
    );
    let unsigned = deliver(
        &api,
        &path,
        &[("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "d-3")],
        &body,
    );
    assert_eq!(unsigned.status, 401, "{}", unsigned.body);
    let other = github_push("refs/heads/feature", &first, "wip").to_string();
    let ignored = deliver(
        &api,
        &path,
        &github_headers(&sign(&secret, &other), "d-4"),
        &other,
    );
    assert_eq!(
        (ignored.status, ignored.json()["outcome"].as_str()),
        (200, Some("ignored")),
        "{}",
        ignored.body
    );
    let unknown = deliver(
        &api,
        "/api/v1/hooks/git/01JF3Z8Q9V0000000000000000",
        &github_headers(&sign(&secret, &body), "d-5"),
        &body,
    );
    assert_eq!(
        unknown.status, 401,
        "an unknown hook answers like a bad signature"
    );
    let hook = listed(&controller, &id);
    assert_eq!(
        (hook["accepted"].as_u64(), hook["refused"].as_u64()),
        (Some(1), Some(3)),
        "{hook:#}"
    );
    assert_eq!(repo.ran(), "v1\n", "nothing else ran");

    // GitLab: a tag push with its token deploys the tag's commit.
    let tagged = repo.commit("v2", true, "HEAD:refs/tags/v2.0");
    // Its repository credential is a secret of the environment (a token,
    // which `file://` does not ask for; it must still be found and sent).
    let set = controller.berth_stdin(
        &["secret", "set", "web/production", "REPO_TOKEN"],
        "tok3n-for-the-repo\n",
    );
    assert_eq!(set.code, 0, "{}", set.stderr);
    let gitlab = add_hook(
        &controller,
        &repo,
        &[
            "--ref",
            "refs/tags/v*",
            "--provider",
            "gitlab",
            "--credential",
            "REPO_TOKEN",
        ],
    );
    let (lab_id, token) = (
        gitlab["hook"]["id"].as_str().expect("id").to_string(),
        gitlab["secret"].as_str().expect("secret").to_string(),
    );
    let lab_path = format!("/api/v1/hooks/git/{lab_id}");
    let tag_push = json!({"object_kind": "tag_push", "ref": "refs/tags/v2.0", "checkout_sha": tagged,
        "user_name": "Bo", "commits": [{"id": tagged, "message": "say v2", "timestamp": "2026-12-02T08:00:00Z", "author": {"name": "Bo"}}]})
    .to_string();
    let lab_headers = |token: &str, id: &str| {
        deliver(
            &api,
            &lab_path,
            &[
                ("X-Gitlab-Event", "Tag Push Hook"),
                ("X-Gitlab-Token", token),
                ("X-Gitlab-Event-UUID", id),
            ],
            &tag_push,
        )
    };
    assert_eq!(lab_headers("wrong-token", "g-1").status, 401);
    let accepted = lab_headers(&token, "g-2");
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let push = settled_push(&controller, &lab_id, 1);
    assert_eq!(push["state"], "deployed", "{push:#}");
    let shown = controller.wait_quiet(push["deployment"].as_str().expect("deployment"));
    assert_eq!(
        (shown["status"].as_str(), shown["source_ref"].as_str()),
        (Some("deployed"), Some("v2.0"))
    );
    assert_eq!(repo.ran(), "v1\nv2\n");

    // A commit without berth.toml at the path fails its push, with why.
    let bare = repo.commit("v3", false, "HEAD:main");
    let body = github_push("refs/heads/main", &bare, "drop the manifest").to_string();
    let accepted = deliver(
        &api,
        &path,
        &github_headers(&sign(&secret, &body), "d-6"),
        &body,
    );
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let push = settled_push(&controller, &id, 2);
    assert_eq!(push["state"], "failed", "{push:#}");
    assert!(
        push["error"]
            .as_str()
            .is_some_and(|error| error.contains("no berth.toml")),
        "{push:#}"
    );
    assert_eq!(repo.ran(), "v1\nv2\n");
    assert!(!controller.log().contains(&secret) && !controller.log().contains(&token));
}
