//! Standard Webhooks signatures: a per-endpoint secret `whsec_` +
//! base64(key), and `webhook-signature: v1,<base64(HMAC-SHA256(key,
//! "{webhook-id}.{webhook-timestamp}.{body}"))>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use zeroize::Zeroizing;

/// What every signing secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: 32 random bytes.
pub fn new_secret() -> Zeroizing<String> {
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(key.as_mut());
    Zeroizing::new(format!("{SECRET_PREFIX}{}", STANDARD.encode(key.as_ref())))
}

/// The `webhook-signature` header of one attempt; `None` when the secret
/// is not `whsec_` and base64.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = Zeroizing::new(STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body.as_bytes());
    Some(format!("v1,{}", STANDARD.encode(context.sign().as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signature.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn a_new_secret_signs_and_two_differ() {
        let (one, two) = (new_secret(), new_secret());
        assert_ne!(*one, *two);
        assert!(
            one.starts_with(SECRET_PREFIX) && one.len() > 40,
            "{}",
            one.len()
        );
        assert!(sign(&one, "msg_1", 1, "{}").is_some());
        assert_eq!(sign("nope", "msg_1", 1, "{}"), None);
    }
}
