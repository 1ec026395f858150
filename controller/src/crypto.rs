//! The secret store's cipher: XChaCha20-Poly1305 (RustCrypto's
//! `chacha20poly1305`) under the controller's one secrets key
//! ([`SecretKey`], kept in `keys/secrets.key`, see `key_file.rs`).
//!
//! Every value is sealed with a fresh random 24-byte nonce (XChaCha's
//! nonce is long enough that random nonces never repeat in practice) and
//! with associated data naming its place ([`Place`]): a secret's scope,
//! name and version, or a registry's host, plus the key's id. A ciphertext
//! copied to another place fails to open, as does one opened with another
//! key. This module does no I/O and never formats a key or a value: the
//! `Debug` of [`SecretKey`] shows only its id.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use berth_shared::record::SecretScope;

/// Length of a secrets key in bytes.
pub const KEY_BYTES: usize = 32;
/// Length of a nonce in bytes.
pub const NONCE_BYTES: usize = 24;

/// The id of a secrets key: the hex of the first 8 bytes of its SHA-256.
/// Records name the key that sealed them by it, so a controller can tell
/// that it holds the wrong key without trying to open anything.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The controller's secrets key, wiped from memory when dropped.
pub struct SecretKey {
    bytes: Zeroizing<[u8; KEY_BYTES]>,
    id: KeyId,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> SecretKey {
        let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
        rand::rng().fill_bytes(bytes.as_mut());
        SecretKey::with_bytes(bytes)
    }

    /// The key a key file holds; `None` unless it is exactly
    /// [`KEY_BYTES`] long.
    pub fn from_slice(bytes: &[u8]) -> Option<SecretKey> {
        let array = <[u8; KEY_BYTES]>::try_from(bytes).ok()?;
        Some(SecretKey::with_bytes(Zeroizing::new(array)))
    }

    fn with_bytes(bytes: Zeroizing<[u8; KEY_BYTES]>) -> SecretKey {
        let digest = Sha256::digest(bytes.as_ref());
        let id = KeyId(hex::encode(&digest[..8]));
        SecretKey { bytes, id }
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The raw key, to write into its file.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_ref()
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(self.bytes.as_ref()))
    }

    /// Seals `plaintext` for `place` with a fresh random nonce.
    pub fn seal(&self, place: &Place, plaintext: &[u8]) -> Sealed {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let aad = place.associated_data(&self.id);
        let ciphertext = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect(
                "XChaCha20-Poly1305 seals any message under 256 GiB; values are at most 64 KiB",
            );
        Sealed {
            key_id: self.id.clone(),
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        }
    }

    /// Opens what [`SecretKey::seal`] sealed for the same `place`.
    pub fn open(&self, place: &Place, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        if sealed.key_id != self.id {
            return Err(OpenError::OtherKey(sealed.key_id.clone()));
        }
        let nonce = hex::decode(&sealed.nonce)
            .ok()
            .filter(|nonce| nonce.len() == NONCE_BYTES)
            .ok_or(OpenError::Damaged)?;
        let ciphertext = hex::decode(&sealed.ciphertext).map_err(|_| OpenError::Damaged)?;
        let aad = place.associated_data(&self.id);
        self.cipher()
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Damaged)
    }

    /// Opens a sealed text (a secret's value, a registry password).
    pub fn open_text(
        &self,
        place: &Place,
        sealed: &Sealed,
    ) -> Result<Zeroizing<String>, OpenError> {
        let mut bytes = self.open(place, sealed)?;
        let text = String::from_utf8(std::mem::take(&mut *bytes)).map_err(|err| {
            // The bytes of a refused text are wiped too.
            drop(Zeroizing::new(err.into_bytes()));
            OpenError::Damaged
        })?;
        Ok(Zeroizing::new(text))
    }
}

/// A sealed value as stored: the id of the key that sealed it, its nonce
/// and its ciphertext with the 16-byte tag (both hex). Its `Debug` shows
/// only the key id.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub key_id: KeyId,
    pub nonce: String,
    pub ciphertext: String,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Why a sealed value did not open.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// It was sealed with another key than the one given.
    #[error("it was sealed with key {0}, not the controller's")]
    OtherKey(KeyId),
    /// Its bytes, its place or the key do not match its tag.
    #[error("it does not decrypt: the record is damaged or was moved from another place")]
    Damaged,
}

/// Where a sealed value belongs; bound into its associated data.
#[derive(Clone, Copy, Debug)]
pub enum Place<'a> {
    /// One version of a secret.
    Secret {
        scope: &'a SecretScope,
        name: &'a str,
        version: u64,
    },
    /// A registry's password.
    Registry { server: &'a str },
    /// A webhook endpoint's URL and signing secret.
    Webhook { id: &'a str },
    /// A git push hook's secret.
    Hook { id: &'a str },
}

impl Place<'_> {
    /// `berth/secret/v1 \0 scope \0 name \0 version(u64 BE) key_id`, or
    /// `berth/registry/v1 \0 server \0 key_id`. Names hold no NUL, so two
    /// places never share their associated data.
    fn associated_data(&self, key_id: &KeyId) -> Vec<u8> {
        let mut aad = Vec::with_capacity(128);
        match self {
            Place::Secret {
                scope,
                name,
                version,
            } => {
                aad.extend_from_slice(b"berth/secret/v1\0");
                match scope {
                    SecretScope::App { app, environment } => {
                        aad.extend_from_slice(b"app\0");
                        aad.extend_from_slice(app.as_bytes());
                        aad.push(0);
                        aad.extend_from_slice(environment.as_bytes());
                    }
                    SecretScope::Fleet => aad.extend_from_slice(b"fleet"),
                }
                aad.push(0);
                aad.extend_from_slice(name.as_bytes());
                aad.push(0);
                aad.extend_from_slice(&version.to_be_bytes());
            }
            Place::Registry { server } => {
                aad.extend_from_slice(b"berth/registry/v1\0");
                aad.extend_from_slice(server.as_bytes());
                aad.push(0);
            }
            Place::Webhook { id } => {
                aad.extend_from_slice(b"berth/webhook/v1\0");
                aad.extend_from_slice(id.as_bytes());
                aad.push(0);
            }
            Place::Hook { id } => {
                aad.extend_from_slice(b"berth/hook/v1\0");
                aad.extend_from_slice(id.as_bytes());
                aad.push(0);
            }
        }
        aad.extend_from_slice(key_id.as_str().as_bytes());
        aad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web_prod() -> SecretScope {
        SecretScope::App {
            app: "web".into(),
            environment: "prod".into(),
        }
    }

    fn secret<'a>(scope: &'a SecretScope, name: &'a str, version: u64) -> Place<'a> {
        Place::Secret {
            scope,
            name,
            version,
        }
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_at_its_place() {
        let key = SecretKey::generate();
        let scope = web_prod();
        let sealed = key.seal(&secret(&scope, "DB_URL", 3), b"postgres://u:p@db/app");
        assert_eq!(sealed.key_id, *key.id());
        assert_eq!(sealed.nonce.len(), 2 * NONCE_BYTES);
        assert!(!sealed.ciphertext.contains(&hex::encode("postgres")));
        let opened = key
            .open_text(&secret(&scope, "DB_URL", 3), &sealed)
            .expect("opens");
        assert_eq!(opened.as_str(), "postgres://u:p@db/app");
        let again = key.seal(&secret(&scope, "DB_URL", 3), b"postgres://u:p@db/app");
        assert_ne!(sealed.nonce, again.nonce, "a fresh nonce each time");
        assert_ne!(sealed.ciphertext, again.ciphertext);
    }

    #[test]
    fn another_key_does_not_open_it() {
        let key = SecretKey::generate();
        let other = SecretKey::generate();
        assert_ne!(key.id(), other.id());
        let scope = web_prod();
        let place = secret(&scope, "DB_URL", 1);
        let sealed = key.seal(&place, b"hunter2");
        assert_eq!(
            other.open(&place, &sealed),
            Err(OpenError::OtherKey(key.id().clone()))
        );
        // Even when the record claims the other key's id.
        let forged = Sealed {
            key_id: other.id().clone(),
            ..sealed
        };
        assert_eq!(other.open(&place, &forged), Err(OpenError::Damaged));
    }

    #[test]
    fn a_ciphertext_moved_to_another_place_does_not_open() {
        let key = SecretKey::generate();
        let scope = web_prod();
        let sealed = key.seal(&secret(&scope, "DB_URL", 2), b"hunter2");
        let staging = SecretScope::App {
            app: "web".into(),
            environment: "staging".into(),
        };
        let moved = [
            secret(&scope, "DB_URL", 1),
            secret(&scope, "DB_URL", 3),
            secret(&scope, "API_KEY", 2),
            secret(&staging, "DB_URL", 2),
            secret(&SecretScope::Fleet, "DB_URL", 2),
            Place::Registry { server: "DB_URL" },
        ];
        for place in moved {
            assert_eq!(
                key.open(&place, &sealed),
                Err(OpenError::Damaged),
                "{place:?}"
            );
        }
        let registry = key.seal(&Place::Registry { server: "a.io" }, b"pw");
        let elsewhere = Place::Registry { server: "b.io" };
        assert_eq!(key.open(&elsewhere, &registry), Err(OpenError::Damaged));
    }

    #[test]
    fn damaged_records_are_refused_not_panicked_on() {
        let key = SecretKey::generate();
        let place = Place::Registry { server: "a.io" };
        let sealed = key.seal(&place, b"pw");
        let mut flipped = sealed.clone();
        flipped.ciphertext.replace_range(0..2, "ff");
        if flipped.ciphertext == sealed.ciphertext {
            flipped.ciphertext.replace_range(0..2, "00");
        }
        for damaged in [
            flipped,
            Sealed {
                nonce: "zz".into(),
                ..sealed.clone()
            },
            Sealed {
                nonce: "00".into(),
                ..sealed.clone()
            },
            Sealed {
                ciphertext: String::new(),
                ..sealed.clone()
            },
        ] {
            assert_eq!(key.open(&place, &damaged), Err(OpenError::Damaged));
        }
    }

    #[test]
    fn a_key_shows_its_id_only() {
        let key = SecretKey::from_slice(&[7u8; KEY_BYTES]).expect("32 bytes");
        assert_eq!(key.id().as_str().len(), 16);
        let shown = format!("{key:?}");
        assert!(shown.contains(key.id().as_str()), "{shown}");
        assert!(!shown.contains("7, 7"), "{shown}");
        assert!(SecretKey::from_slice(&[7u8; 31]).is_none());
        assert!(SecretKey::from_slice(&[7u8; 33]).is_none());
        let same = SecretKey::from_slice(&[7u8; KEY_BYTES]).expect("32 bytes");
        assert_eq!(key.id(), same.id(), "the id follows from the key");
    }
}
