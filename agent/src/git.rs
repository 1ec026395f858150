//! Git fetches for `berth hook` (a build agent's part of a push): fetch one
//! commit of a repository with `git` into a scratch directory under the
//! data directory, pack its tree (or a subdirectory) as a bundle with `git
//! archive`, upload it to the controller under the fetch's request id,
//! and answer with a `FetchResult`. A credential never reaches git's
//! command line: a token goes in through `GIT_CONFIG_*` variables, a deploy
//! key into a 0600 file inside the scratch directory, removed with it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use berth_proto::v1::agent_message::Kind as Outgoing;
use berth_proto::v1::{AgentMessage, FetchRequest, FetchResult};
use tokio::process::Command;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::Agent;

/// The longest a fetch may take unless the request says less.
const MAX_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Most bytes of git's error output quoted back.
const MAX_ERROR: usize = 2000;

/// Runs one fetch and answers on `sender`.
pub async fn run(agent: &Agent, request: FetchRequest, sender: mpsc::Sender<AgentMessage>) {
    let request_id = request.request_id;
    info!(request_id, url = %request.url, commit = %request.commit, "git fetch started");
    let result = match fetch(agent, &request).await {
        Ok((digest, size)) => {
            info!(request_id, %digest, size, "git fetch uploaded");
            FetchResult {
                request_id,
                digest,
                size,
                error: String::new(),
            }
        }
        Err(error) => {
            warn!(request_id, %error, "git fetch failed");
            FetchResult {
                request_id,
                error,
                ..FetchResult::default()
            }
        }
    };
    let _ = sender
        .send(AgentMessage {
            kind: Some(Outgoing::Fetched(result)),
        })
        .await;
}

/// True for a full hex object id (SHA-1 or SHA-256).
fn is_object_id(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.chars().all(|c| c.is_ascii_hexdigit())
}

async fn fetch(agent: &Agent, request: &FetchRequest) -> Result<(String, u64), String> {
    if request.url.is_empty() || request.url.starts_with('-') {
        return Err(format!("`{}` is not a repository URL", request.url));
    }
    if !is_object_id(&request.commit) {
        return Err(format!("`{}` is not a commit id", request.commit));
    }
    let path = request.path.trim_matches('/');
    if path.split('/').any(|part| part == ".." || part == ".") || path.contains("//") {
        return Err(format!("the path `{path}` must stay inside the repository"));
    }
    let scratch = Scratch::make(agent.files.root(), request.request_id)?;
    let repo = scratch.path().join("repo");
    let timeout = Duration::from_millis(request.timeout_ms.max(1)).min(MAX_TIMEOUT);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut env: Vec<(String, String)> = vec![
        ("GIT_TERMINAL_PROMPT".into(), "0".into()),
        ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
        ("HOME".into(), scratch.path().display().to_string()),
    ];
    if !request.token.is_empty() {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("x-access-token:{}", request.token));
        env.extend([
            ("GIT_CONFIG_COUNT".into(), "1".into()),
            ("GIT_CONFIG_KEY_0".into(), "http.extraHeader".into()),
            (
                "GIT_CONFIG_VALUE_0".into(),
                format!("Authorization: Basic {basic}"),
            ),
        ]);
    }
    if !request.ssh_key.is_empty() {
        let key = scratch.path().join("deploy-key");
        write_private(&key, request.ssh_key.as_bytes())?;
        env.push((
            "GIT_SSH_COMMAND".into(),
            format!(
                "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={}",
                key.display(),
                scratch.path().join("known_hosts").display()
            ),
        ));
    }
    git(&env, deadline, &["init", "-q", &repo.display().to_string()]).await?;
    let repo_arg = repo.display().to_string();
    git(
        &env,
        deadline,
        &[
            "-C",
            &repo_arg,
            "fetch",
            "-q",
            "--depth",
            "1",
            "--no-tags",
            &request.url,
            &request.commit,
        ],
    )
    .await?;
    let tree = if path.is_empty() {
        "FETCH_HEAD^{tree}".to_string()
    } else {
        format!("FETCH_HEAD:{path}")
    };
    let bundle = scratch.path().join("bundle.tar.gz");
    let bundle_arg = bundle.display().to_string();
    git(
        &env,
        deadline,
        &[
            "-C",
            &repo_arg,
            "archive",
            "--format=tar.gz",
            "-o",
            &bundle_arg,
            &tree,
        ],
    )
    .await
    .map_err(|err| {
        if path.is_empty() {
            err
        } else {
            format!("the commit has no directory `{path}`: {err}")
        }
    })?;
    let uploaded = crate::fetch::upload(&agent.channel, &bundle, "", request.request_id)
        .await
        .map_err(|err| format!("upload the fetched bundle: {err:#}"))?;
    Ok(uploaded)
}

/// A scratch directory removed (with the deploy key in it) when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn make(root: &Path, request_id: u64) -> Result<Scratch, String> {
        let dir = root.join(format!("git-fetch-{request_id}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|err| format!("make {}: {err}", dir.display()))?;
        Ok(Scratch(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a deploy key readable by this user only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|err| format!("write the deploy key: {err}"))?;
    file.write_all(bytes)
        .and_then(|()| {
            if bytes.ends_with(b"\n") {
                Ok(())
            } else {
                file.write_all(b"\n")
            }
        })
        .map_err(|err| format!("write the deploy key: {err}"))
}

/// Runs `git ARGS` until `deadline`; its last error lines when it fails.
async fn git(
    env: &[(String, String)],
    deadline: tokio::time::Instant,
    args: &[&str],
) -> Result<(), String> {
    let mut command = Command::new("git");
    command
        .args(args)
        .envs(
            env.iter()
                .map(|(key, value)| (key.as_str(), value.as_str())),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            "git is not installed on this build agent; install it (apt-get install git)".to_string()
        } else {
            format!("run git: {err}")
        }
    })?;
    let output = tokio::time::timeout_at(deadline, child.wait_with_output())
        .await
        .map_err(|_| {
            format!(
                "git {} did not finish in time",
                args.iter()
                    .find(|a| !a.starts_with('-') && !a.contains('/'))
                    .unwrap_or(&"")
            )
        })?
        .map_err(|err| format!("run git: {err}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: String = stderr
        .trim()
        .chars()
        .rev()
        .take(MAX_ERROR)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(format!("git failed ({}): {tail}", output.status))
}

#[cfg(test)]
mod tests {
    use super::is_object_id;

    #[test]
    fn only_full_object_ids_are_fetched() {
        assert!(is_object_id(&"a".repeat(40)));
        assert!(is_object_id(&"0".repeat(64)));
        assert!(!is_object_id("main"));
        assert!(!is_object_id("--upload-pack=evil"));
        assert!(!is_object_id(&"g".repeat(40)));
    }
}
