//! Records of git push hooks (`berth hook`): a hook as listed
//! ([`HookView`], never its secret), the answer to `add` that shows the
//! secret and the URL to give the git host once ([`CreatedHook`]), and one
//! push it accepted with what came of it ([`PushView`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// Which git host signs the hook's deliveries, and how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GitProvider {
    /// `X-Hub-Signature-256` (HMAC-SHA256 of the body), `X-GitHub-Delivery`.
    #[default]
    Github,
    /// `X-Gitlab-Token` (the secret itself), `X-Gitlab-Event-UUID`.
    Gitlab,
    /// Gitea and Forgejo: `X-Gitea-Signature`/`X-Forgejo-Signature`
    /// (HMAC-SHA256 of the body, hex), `X-Gitea-Delivery`.
    Gitea,
}

impl GitProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            GitProvider::Github => "github",
            GitProvider::Gitlab => "gitlab",
            GitProvider::Gitea => "gitea",
        }
    }
}

impl fmt::Display for GitProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GitProvider {
    type Err = String;

    fn from_str(text: &str) -> Result<GitProvider, String> {
        match text {
            "github" | "" => Ok(GitProvider::Github),
            "gitlab" => Ok(GitProvider::Gitlab),
            "gitea" | "forgejo" => Ok(GitProvider::Gitea),
            other => Err(format!(
                "`{other}` is not a git host berth knows; use github, gitlab or gitea (also for Forgejo)"
            )),
        }
    }
}

/// Where a push stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PushState {
    /// Accepted, waiting for a build agent.
    Queued,
    /// A build agent is fetching the commit.
    Fetching,
    /// The deployment is made (see `deployment`).
    Deployed,
    /// It came to nothing (see `error`).
    Failed,
}

impl PushState {
    pub fn as_str(self) -> &'static str {
        match self {
            PushState::Queued => "queued",
            PushState::Fetching => "fetching",
            PushState::Deployed => "deployed",
            PushState::Failed => "failed",
        }
    }
}

/// One push a hook accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushView {
    pub id: String,
    /// The git host's delivery id.
    pub delivery: String,
    /// `refs/heads/main`, `refs/tags/v1.2.0`.
    pub git_ref: String,
    pub commit: String,
    pub message: Option<String>,
    pub author: Option<String>,
    pub commit_time: Option<Timestamp>,
    pub state: PushState,
    /// The deployment it made.
    pub deployment: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    pub received_at: Timestamp,
}

/// A git push hook, as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HookView {
    pub id: String,
    pub app: String,
    pub environment: String,
    /// `main` (a branch), `refs/tags/v*` (a pattern with `*`), or a full ref.
    pub git_ref: String,
    pub repo: String,
    /// The repository's subdirectory that holds `berth.toml`, if not its root.
    pub path: Option<String>,
    pub provider: GitProvider,
    /// A secret of the app's environment (or the fleet's) holding a token
    /// or a deploy key for the repository.
    pub credential: Option<String>,
    /// The labels a build agent that fetches must have (empty: any agent).
    pub build_labels: String,
    /// Deliveries accepted and refused (bad signature or token, replayed).
    pub accepted: u64,
    pub refused: u64,
    /// The latest pushes, newest first.
    pub pushes: Vec<PushView>,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// What `berth hook add` answers: the hook, the URL to give the git host,
/// and the secret it signs with (a token for GitLab), shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedHook {
    pub hook: HookView,
    /// The path of the receiving route (`/api/v1/hooks/git/{id}`) after
    /// the controller's public URL.
    pub url: String,
    pub secret: String,
}
