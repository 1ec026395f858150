//! Who sent a git host's delivery: its signature (GitHub, Gitea and
//! Forgejo: HMAC-SHA256 of the body under the hook's secret, compared in
//! constant time by ring) or token (GitLab, compared in constant time), its
//! delivery id (for replays) and its event.

use berth_shared::record::GitProvider;
use subtle::ConstantTimeEq;

/// Longest delivery id kept.
const MAX_DELIVERY_ID: usize = 128;

/// What a delivery is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// GitHub's `ping` when a hook is made.
    Ping,
    /// A push of branches or tags.
    Push,
    /// Anything else, by its name.
    Other(String),
}

/// A delivery whose sender was checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub delivery: String,
    pub event: Event,
}

/// Why a delivery is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No signature or token, or one that does not match.
    Signature(String),
    /// Not a delivery berth can take (no delivery id).
    Invalid(String),
}

/// Checks a delivery's signature or token, and reads its id and event.
/// `header` answers a header by its lower-case name.
pub fn check(
    provider: GitProvider,
    secret: &str,
    header: impl Fn(&str) -> Option<String>,
    body: &[u8],
) -> Result<Checked, Refusal> {
    let first = |names: &[&str]| names.iter().find_map(|name| header(name));
    match provider {
        GitProvider::Github => {
            let signature = first(&["x-hub-signature-256"]).ok_or_else(|| {
                Refusal::Signature(
                    "no X-Hub-Signature-256 header; set the hook's secret on GitHub".into(),
                )
            })?;
            let hex = signature.strip_prefix("sha256=").unwrap_or("");
            verify_hmac(secret, body, hex, "X-Hub-Signature-256")?;
        }
        GitProvider::Gitea => {
            let signature =
                first(&["x-gitea-signature", "x-forgejo-signature"]).ok_or_else(|| {
                    Refusal::Signature(
                        "no X-Gitea-Signature header; set the hook's secret on Gitea or Forgejo"
                            .into(),
                    )
                })?;
            verify_hmac(secret, body, &signature, "X-Gitea-Signature")?;
        }
        GitProvider::Gitlab => {
            let token = first(&["x-gitlab-token"]).ok_or_else(|| {
                Refusal::Signature(
                    "no X-Gitlab-Token header; set the hook's secret token on GitLab".into(),
                )
            })?;
            if !bool::from(token.as_bytes().ct_eq(secret.as_bytes())) {
                return Err(Refusal::Signature(
                    "the X-Gitlab-Token does not match the hook's secret".into(),
                ));
            }
        }
    }
    let delivery = first(&[
        "x-github-delivery",
        "x-gitea-delivery",
        "x-forgejo-delivery",
        "x-gitlab-event-uuid",
        "idempotency-key",
    ])
    .filter(|id| !id.is_empty() && id.len() <= MAX_DELIVERY_ID && id.bytes().all(|b| b.is_ascii_graphic()))
    .ok_or_else(|| Refusal::Invalid("the delivery has no delivery id header (X-GitHub-Delivery, X-Gitea-Delivery or X-Gitlab-Event-UUID)".into()))?;
    let name = first(&[
        "x-github-event",
        "x-gitea-event",
        "x-forgejo-event",
        "x-gitlab-event",
    ])
    .unwrap_or_default();
    let event = match name.as_str() {
        "ping" => Event::Ping,
        "push" | "Push Hook" | "Tag Push Hook" => Event::Push,
        other => Event::Other(other.chars().take(64).collect()),
    };
    Ok(Checked { delivery, event })
}

/// Compares a hex HMAC-SHA256 of `body` in constant time.
fn verify_hmac(
    secret: &str,
    body: &[u8],
    hex_signature: &str,
    header: &str,
) -> Result<(), Refusal> {
    let wrong = || Refusal::Signature(format!("the {header} does not match the hook's secret"));
    let signature = hex::decode(hex_signature.trim()).map_err(|_| wrong())?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, body, &signature).map_err(|_| wrong())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        hex::encode(ring::hmac::sign(&key, body).as_ref())
    }

    fn headers<'a>(pairs: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
        }
    }

    #[test]
    fn each_provider_is_checked_its_own_way() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let github = [
            (
                "x-hub-signature-256",
                format!("sha256={}", sign("s3cret", body)),
            ),
            ("x-github-delivery", "d-1".to_string()),
            ("x-github-event", "push".to_string()),
        ];
        assert_eq!(
            check(GitProvider::Github, "s3cret", headers(&github), body),
            Ok(Checked {
                delivery: "d-1".into(),
                event: Event::Push
            })
        );
        assert!(matches!(
            check(GitProvider::Github, "other", headers(&github), body),
            Err(Refusal::Signature(_))
        ));
        assert!(matches!(
            check(GitProvider::Github, "s3cret", headers(&github), b"{}"),
            Err(Refusal::Signature(_))
        ));
        let gitea = [
            ("x-gitea-signature", sign("s3cret", body)),
            ("x-gitea-delivery", "d-2".to_string()),
            ("x-gitea-event", "push".to_string()),
        ];
        assert!(check(GitProvider::Gitea, "s3cret", headers(&gitea), body).is_ok());
        let gitlab = [
            ("x-gitlab-token", "s3cret".to_string()),
            ("x-gitlab-event-uuid", "d-3".to_string()),
            ("x-gitlab-event", "Tag Push Hook".to_string()),
        ];
        assert_eq!(
            check(GitProvider::Gitlab, "s3cret", headers(&gitlab), body).map(|c| c.event),
            Ok(Event::Push)
        );
        assert!(matches!(
            check(GitProvider::Gitlab, "s3cre", headers(&gitlab), body),
            Err(Refusal::Signature(_))
        ));
        let no_id = [("x-gitlab-token", "s3cret".to_string())];
        assert!(matches!(
            check(GitProvider::Gitlab, "s3cret", headers(&no_id), body),
            Err(Refusal::Invalid(_))
        ));
    }
}
