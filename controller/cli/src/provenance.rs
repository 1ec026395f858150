//! `berth deploy --message --ref --sha --commit-time --build-url`, and the
//! same taken from a CI job's environment when the flags are not given:
//! GitHub Actions (and Gitea/Forgejo Actions, which set the same
//! variables), GitLab CI and Jenkins. A commit's time, when no flag or
//! variable gives it, is read from the git repository holding the
//! manifest (`git log -1 --format=%cI SHA`), if the commit is there.

use clap::Args;

/// Where a deployment comes from.
#[derive(Args, Debug, Default, Clone)]
pub struct ProvenanceArgs {
    /// Why: shown with the deployment (default: the CI's commit message).
    #[arg(long)]
    pub message: Option<String>,
    /// The branch or tag deployed (default: from CI variables).
    #[arg(long = "ref")]
    pub source_ref: Option<String>,
    /// The commit deployed (default: GITHUB_SHA, CI_COMMIT_SHA, GIT_COMMIT).
    #[arg(long)]
    pub sha: Option<String>,
    /// When the commit was made, RFC 3339 (default: CI_COMMIT_TIMESTAMP,
    /// else git's commit time of --sha in the manifest's repository); the
    /// start of the lead time for changes (`berth metrics dora`).
    #[arg(long, value_name = "RFC3339", value_parser = parse_commit_time)]
    pub commit_time: Option<i64>,
    /// The CI run that deployed (default: from CI variables).
    #[arg(long)]
    pub build_url: Option<String>,
}

/// Parses `--commit-time` into Unix milliseconds.
pub fn parse_commit_time(text: &str) -> Result<i64, String> {
    berth_shared::time::parse_rfc3339(text.trim())
        .map(berth_shared::time::unix_ms)
        .ok_or_else(|| format!("`{text}` is not an RFC 3339 time like 2026-05-01T12:00:00Z"))
}

/// The commit's time (Unix ms): the flag, else CI_COMMIT_TIMESTAMP, else
/// what `git_time` says of the commit `sha` (when one is known); a value
/// that does not parse is left out.
pub fn commit_time(
    args: &ProvenanceArgs,
    var: impl Fn(&str) -> Option<String>,
    sha: Option<&str>,
    git_time: impl Fn(&str) -> Option<String>,
) -> Option<i64> {
    args.commit_time
        .or_else(|| var("CI_COMMIT_TIMESTAMP").and_then(|text| parse_commit_time(&text).ok()))
        .or_else(|| {
            sha.and_then(&git_time)
                .and_then(|text| parse_commit_time(&text).ok())
        })
}

/// The committer time of `sha` in the git repository holding `dir`, as
/// `git log -1 --format=%cI` prints it; `None` without git, outside a
/// repository, or when the commit is not there.
pub fn git_commit_time(dir: &std::path::Path, sha: &str) -> Option<String> {
    if !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["log", "-1", "--format=%cI", sha, "--"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

/// The four values, each from its flag or else the environment `var`
/// reads (`std::env::var` in use; a map in tests).
pub fn resolve(
    args: &ProvenanceArgs,
    var: impl Fn(&str) -> Option<String>,
) -> (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    let first = |names: &[&str]| {
        names
            .iter()
            .find_map(|name| var(name).filter(|value| !value.trim().is_empty()))
    };
    let github_run = || {
        let server = var("GITHUB_SERVER_URL")?;
        let repository = var("GITHUB_REPOSITORY")?;
        let run = var("GITHUB_RUN_ID")?;
        Some(format!("{server}/{repository}/actions/runs/{run}"))
    };
    let message = args.message.clone().or_else(|| {
        first(&["CI_COMMIT_MESSAGE"])
            .map(|text| text.lines().next().unwrap_or_default().to_string())
    });
    let source_ref = args
        .source_ref
        .clone()
        .or_else(|| first(&["GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "GIT_BRANCH"]));
    let sha = args
        .sha
        .clone()
        .or_else(|| first(&["GITHUB_SHA", "CI_COMMIT_SHA", "GIT_COMMIT"]));
    let build_url = args
        .build_url
        .clone()
        .or_else(github_run)
        .or_else(|| first(&["CI_JOB_URL", "CI_PIPELINE_URL", "BUILD_URL"]));
    (message, source_ref, sha, build_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn github_actions_variables_fill_what_the_flags_leave() {
        let github = env(&[
            ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_SERVER_URL", "https://github.example"),
            ("GITHUB_REPOSITORY", "team/shop"),
            ("GITHUB_RUN_ID", "42"),
        ]);
        let args = ProvenanceArgs {
            message: Some("fix login".into()),
            ..Default::default()
        };
        let (message, source_ref, sha, url) = resolve(&args, github);
        assert_eq!(message.as_deref(), Some("fix login"));
        assert_eq!(source_ref.as_deref(), Some("main"));
        assert_eq!(
            sha.as_deref(),
            Some("0123456789abcdef0123456789abcdef01234567")
        );
        assert_eq!(
            url.as_deref(),
            Some("https://github.example/team/shop/actions/runs/42")
        );
    }

    #[test]
    fn gitlab_variables_and_flags_win_over_them() {
        let gitlab = env(&[
            ("CI_COMMIT_SHA", "abcdef1"),
            ("CI_COMMIT_REF_NAME", "release"),
            ("CI_JOB_URL", "https://gitlab.example/job/9"),
            ("CI_COMMIT_MESSAGE", "first line\n\nbody"),
        ]);
        let args = ProvenanceArgs {
            sha: Some("1234567".into()),
            ..Default::default()
        };
        let (message, source_ref, sha, url) = resolve(&args, gitlab);
        assert_eq!(message.as_deref(), Some("first line"));
        assert_eq!(source_ref.as_deref(), Some("release"));
        assert_eq!(sha.as_deref(), Some("1234567"), "the flag wins");
        assert_eq!(url.as_deref(), Some("https://gitlab.example/job/9"));
        let (message, source_ref, sha, url) = resolve(&ProvenanceArgs::default(), env(&[]));
        assert_eq!((message, source_ref, sha, url), (None, None, None, None));
    }

    #[test]
    fn the_commit_time_comes_from_the_flag_then_ci_then_git() {
        let none = |_: &str| None;
        let git = |sha: &str| (sha == "abcdef1").then(|| "2026-05-01T14:00:00+02:00".to_string());
        let flag = ProvenanceArgs {
            commit_time: Some(5),
            ..Default::default()
        };
        assert_eq!(commit_time(&flag, none, Some("abcdef1"), git), Some(5));
        let gitlab = env(&[("CI_COMMIT_TIMESTAMP", "2026-05-01T12:00:00Z")]);
        let default = ProvenanceArgs::default();
        let noon = parse_commit_time("2026-05-01T12:00:00Z").expect("time");
        assert_eq!(commit_time(&default, gitlab, None, git), Some(noon));
        assert_eq!(
            commit_time(&default, none, Some("abcdef1"), git),
            Some(noon),
            "the offset applies"
        );
        assert_eq!(commit_time(&default, none, Some("1234567"), git), None);
        assert_eq!(commit_time(&default, none, None, git), None);
        assert!(parse_commit_time("yesterday").is_err());
    }
}
