//! The shape every bearer secret berth hands out shares: `PREFIX<id>_<secret>`
//! (`bta_` API tokens, `bts_` web sessions, `bsl_` setup links). The id
//! finds the record; only the SHA-256 of the secret is stored, and it is
//! compared in constant time.

use base64::Engine;
use rand::Rng;
use subtle::ConstantTimeEq;

use crate::store::hash_secret;

/// A fresh record id: 12 lower-case letters and digits.
pub fn new_id() -> String {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..12)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

/// A fresh secret: 32 random bytes, URL-safe base64 (43 characters).
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `PREFIX<id>_<secret>` into its id and secret; `None` for anything
/// that cannot be one.
pub fn split<'a>(prefix: &str, text: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = text.trim().strip_prefix(prefix)?;
    let (id, secret) = rest.split_once('_')?;
    let plausible = !id.is_empty()
        && id.len() <= 32
        && id.bytes().all(|b| b.is_ascii_alphanumeric())
        && (16..=128).contains(&secret.len());
    plausible.then_some((id, secret))
}

/// Whether `secret` is the one whose SHA-256 is `stored`, in constant time.
pub fn matches(secret: &str, stored: &str) -> bool {
    hash_secret(secret)
        .as_bytes()
        .ct_eq(stored.as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_split_into_id_and_secret_and_junk_is_refused() {
        let secret = "s".repeat(43);
        let token = format!("bta_abc123_{secret}");
        assert_eq!(split("bta_", &token), Some(("abc123", secret.as_str())));
        assert_eq!(
            split("bta_", &format!("  {token}\n")),
            Some(("abc123", secret.as_str()))
        );
        assert_eq!(split("bts_", &token), None, "another kind's prefix");
        for junk in [
            "",
            "bta_",
            "bta_abc",
            "bta__x",
            "xyz_abc_secret",
            "bta_a-b_ssssssssssssssssss",
        ] {
            assert_eq!(split("bta_", junk), None, "{junk:?}");
        }
        assert_eq!(split("bta_", &format!("bta_abc_{}", "s".repeat(129))), None);
    }

    #[test]
    fn fresh_secrets_match_their_hash_only() {
        let (one, two) = (new_secret(), new_secret());
        assert_eq!(one.len(), 43);
        assert_ne!(one, two);
        assert!(matches(&one, &hash_secret(&one)));
        assert!(!matches(&two, &hash_secret(&one)));
        let id = new_id();
        assert!(id.len() == 12 && id.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
