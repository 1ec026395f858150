//! Why a deployment exists and from what: the message, branch or tag,
//! commit and CI run a request names, and what triggered it. Checked here
//! so every transport gets the same bounds.

use berth_shared::record::{Deployment, Timestamp};

use super::{Error, Result};

/// Longest message, in characters.
const MAX_MESSAGE_CHARS: usize = 2000;
/// Longest branch or tag name, in bytes.
const MAX_REF_BYTES: usize = 256;
/// Longest build URL, in bytes.
const MAX_URL_BYTES: usize = 2048;

/// How far a commit time may lie ahead of the controller's clock (clocks
/// drift; a commit from tomorrow is a mistake).
const MAX_COMMIT_AHEAD_MS: i64 = 24 * 3600 * 1000;

/// What a request says about where a deployment comes from; all optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provenance {
    pub message: Option<String>,
    pub source_ref: Option<String>,
    pub commit_sha: Option<String>,
    /// When the commit was made.
    pub commit_time: Option<Timestamp>,
    /// Who made it (a git push's delivery says).
    pub commit_author: Option<String>,
    pub build_url: Option<String>,
}

/// What made a deployment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Trigger {
    #[default]
    Cli,
    Api,
    Webhook,
    Schedule,
    Retry,
    Rollback,
    External,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Cli => "cli",
            Trigger::Api => "api",
            Trigger::Webhook => "webhook",
            Trigger::Schedule => "schedule",
            Trigger::Retry => "retry",
            Trigger::Rollback => "rollback",
            Trigger::External => "external",
        }
    }
}

impl Provenance {
    /// The provenance of an earlier deployment, for a re-run of its
    /// snapshot (retry, rollback).
    pub fn of(deployment: &Deployment) -> Provenance {
        Provenance {
            message: deployment.message.clone(),
            source_ref: deployment.source_ref.clone(),
            commit_sha: deployment.commit_sha.clone(),
            commit_time: deployment.commit_time,
            commit_author: deployment.commit_author.clone(),
            build_url: deployment.build_url.clone(),
        }
    }

    /// Refuses values no branch, commit or URL has; empty values are
    /// dropped.
    pub fn checked(self) -> Result<Provenance> {
        let given = |value: Option<String>| {
            value
                .map(|text| text.trim().to_string())
                .filter(|text| !text.is_empty())
        };
        let provenance = Provenance {
            message: given(self.message),
            source_ref: given(self.source_ref),
            commit_sha: given(self.commit_sha),
            commit_time: self.commit_time,
            commit_author: given(self.commit_author)
                .map(|name| berth_shared::text::clip(&name, 200)),
            build_url: given(self.build_url),
        };
        if let Some(time) = provenance.commit_time
            && (time.0 < 0 || time.0 > Timestamp::now().0 + MAX_COMMIT_AHEAD_MS)
        {
            return Err(Error::invalid(format!(
                "commit time {time}: a commit is made after 1970 and not more than a day from now"
            )));
        }
        if let Some(message) = &provenance.message
            && (message.chars().count() > MAX_MESSAGE_CHARS || message.contains('\0'))
        {
            return Err(Error::invalid(format!(
                "message: at most {MAX_MESSAGE_CHARS} characters, no NUL"
            )));
        }
        if let Some(name) = &provenance.source_ref
            && (name.len() > MAX_REF_BYTES || name.chars().any(|c| c.is_control() || c == ' '))
        {
            return Err(Error::invalid(format!(
                "ref `{}`: a branch or tag name, at most {MAX_REF_BYTES} bytes without spaces",
                berth_shared::text::clip(name, 80)
            )));
        }
        if let Some(sha) = &provenance.commit_sha
            && (!(7..=64).contains(&sha.len()) || !sha.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(Error::invalid(format!(
                "sha `{}`: a commit hash is 7 to 64 hex digits",
                berth_shared::text::clip(sha, 80)
            )));
        }
        if let Some(url) = &provenance.build_url
            && (url.len() > MAX_URL_BYTES
                || !(url.starts_with("https://") || url.starts_with("http://"))
                || url.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(Error::invalid(format!(
                "build URL `{}`: an http(s) URL of at most {MAX_URL_BYTES} bytes",
                berth_shared::text::clip(url, 80)
            )));
        }
        Ok(provenance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut Provenance)) -> Result<Provenance> {
        let mut provenance = Provenance::default();
        f(&mut provenance);
        provenance.checked()
    }

    #[test]
    fn good_values_pass_and_empty_ones_are_dropped() {
        let checked = with(|p| {
            p.message = Some("  fix the login  ".into());
            p.source_ref = Some("refs/tags/v1.2".into());
            p.commit_sha = Some("0a1B2c3".into());
            p.build_url = Some("https://ci.example.com/run/7".into());
        })
        .expect("valid");
        assert_eq!(checked.message.as_deref(), Some("fix the login"));
        let empty = with(|p| p.message = Some("  ".into())).expect("valid");
        assert_eq!(empty.message, None);
    }

    #[test]
    fn values_no_branch_commit_or_url_has_are_refused() {
        assert!(with(|p| p.commit_sha = Some("xyz1234".into())).is_err());
        assert!(with(|p| p.commit_sha = Some("abc".into())).is_err());
        assert!(with(|p| p.source_ref = Some("main branch".into())).is_err());
        assert!(with(|p| p.build_url = Some("javascript:alert(1)".into())).is_err());
        assert!(with(|p| p.message = Some("x".repeat(2001))).is_err());
        assert!(with(|p| p.message = Some("a\0b".into())).is_err());
        assert!(with(|p| p.commit_time = Some(Timestamp(-1))).is_err());
        let tomorrow = Timestamp(Timestamp::now().0 + 2 * MAX_COMMIT_AHEAD_MS);
        assert!(with(|p| p.commit_time = Some(tomorrow)).is_err());
        assert!(with(|p| p.commit_time = Some(Timestamp(1_700_000_000_000))).is_ok());
    }
}
