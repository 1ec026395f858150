//! `berth deploy --message --ref --sha --build-url`, and the same taken
//! from a CI job's environment when the flags are not given: GitHub
//! Actions (and Gitea/Forgejo Actions, which set the same variables),
//! GitLab CI and Jenkins.

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
    /// The CI run that deployed (default: from CI variables).
    #[arg(long)]
    pub build_url: Option<String>,
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
}
