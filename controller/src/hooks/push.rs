//! A push delivery's body as berth needs it: the ref, the commit and what
//! the git host says about it (message, author, time), from GitHub's,
//! Gitea's and Forgejo's shape (`ref`, `after`, `head_commit`) or GitLab's
//! (`ref`, `checkout_sha`, `commits`). And whether a hook's ref pattern
//! takes a ref.

use berth_shared::record::Timestamp;
use serde_json::Value;

/// Longest commit message kept, in characters.
const MAX_MESSAGE: usize = 2000;

/// What a push is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    pub git_ref: String,
    pub commit: String,
    pub message: Option<String>,
    pub author: Option<String>,
    pub commit_time: Option<Timestamp>,
}

/// Reads a push; `Ok(None)` for a push that deletes its ref.
pub fn parse(body: &[u8]) -> Result<Option<Push>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| format!("the delivery is not JSON: {err}"))?;
    let text =
        |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    let git_ref = text(&value, "ref").ok_or("the push names no `ref`")?;
    let commit = text(&value, "checkout_sha")
        .or_else(|| text(&value, "after"))
        .ok_or("the push names no commit (`after` or `checkout_sha`)")?;
    if commit.chars().all(|c| c == '0')
        || value.get("deleted").and_then(Value::as_bool) == Some(true)
    {
        return Ok(None);
    }
    let head = value
        .get("head_commit")
        .filter(|head| head.is_object())
        .or_else(|| {
            value
                .get("commits")
                .and_then(Value::as_array)
                .and_then(|commits| {
                    commits
                        .iter()
                        .find(|c| text(c, "id").as_deref() == Some(commit.as_str()))
                })
        });
    let message = head
        .and_then(|head| text(head, "message"))
        .map(|m| m.trim().chars().take(MAX_MESSAGE).collect());
    let author = head
        .and_then(|head| head.get("author"))
        .and_then(|author| text(author, "name").or_else(|| text(author, "username")))
        .or_else(|| text(&value, "user_name"));
    let commit_time = head
        .and_then(|head| text(head, "timestamp"))
        .and_then(|time| time.parse::<jiff::Timestamp>().ok())
        .map(|time| Timestamp(time.as_millisecond()));
    Ok(Some(Push {
        git_ref,
        commit,
        message,
        author,
        commit_time,
    }))
}

/// True when a hook's ref pattern takes `git_ref`: a name is a branch
/// (`main` takes `refs/heads/main`), a pattern with `refs/` is a full ref,
/// and `*` stands for any run of characters (`refs/tags/v*`).
pub fn ref_matches(pattern: &str, git_ref: &str) -> bool {
    let full = if pattern.starts_with("refs/") {
        pattern.to_string()
    } else {
        format!("refs/heads/{pattern}")
    };
    glob(full.as_bytes(), git_ref.as_bytes())
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob(rest, &text[skip..])),
        Some((byte, rest)) => text
            .split_first()
            .is_some_and(|(first, tail)| first == byte && glob(rest, tail)),
    }
}

/// The short name of a ref: `main` for `refs/heads/main`, `v1.2` for
/// `refs/tags/v1.2`.
pub fn short_ref(git_ref: &str) -> &str {
    git_ref
        .strip_prefix("refs/heads/")
        .or_else(|| git_ref.strip_prefix("refs/tags/"))
        .unwrap_or(git_ref)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_and_gitlab_pushes_read_alike() {
        let github = br#"{"ref":"refs/heads/main","after":"abc123","head_commit":{"id":"abc123","message":"fix: the thing\n","timestamp":"2026-12-01T10:00:00+01:00","author":{"name":"Ana","email":"ana@example.com"}}}"#;
        let push = parse(github).expect("parse").expect("a push");
        assert_eq!(push.commit, "abc123");
        assert_eq!(push.message.as_deref(), Some("fix: the thing"));
        assert_eq!(push.author.as_deref(), Some("Ana"));
        assert_eq!(push.commit_time, Some(Timestamp(1_796_115_600_000)));
        let gitlab = br#"{"object_kind":"tag_push","ref":"refs/tags/v2","checkout_sha":"def456","user_name":"Bo","commits":[{"id":"def456","message":"release","timestamp":"2026-12-01T09:00:00Z","author":{"name":"Bo"}}]}"#;
        let push = parse(gitlab).expect("parse").expect("a push");
        assert_eq!(
            (push.git_ref.as_str(), push.commit.as_str()),
            ("refs/tags/v2", "def456")
        );
        assert_eq!(push.message.as_deref(), Some("release"));
        let deleted =
            br#"{"ref":"refs/heads/old","after":"0000000000000000000000000000000000000000"}"#;
        assert_eq!(parse(deleted), Ok(None));
        assert!(parse(b"not json").is_err());
        assert!(parse(br#"{"after":"abc"}"#).is_err());
    }

    #[test]
    fn refs_match_branches_tags_and_patterns() {
        assert!(ref_matches("main", "refs/heads/main"));
        assert!(!ref_matches("main", "refs/heads/main2"));
        assert!(!ref_matches("main", "refs/tags/main"));
        assert!(ref_matches("refs/tags/v*", "refs/tags/v1.2.0"));
        assert!(!ref_matches("refs/tags/v*", "refs/tags/x1"));
        assert!(ref_matches("release/*", "refs/heads/release/2026-12"));
        assert_eq!(short_ref("refs/tags/v1.2"), "v1.2");
    }
}
