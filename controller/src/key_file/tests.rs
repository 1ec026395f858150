//! Tests of the secrets key's file: made once with its modes, chosen
//! against the store, interrupted rotations finished or undone, and the
//! refusals when the key that sealed the store is not there.

use std::os::unix::fs::PermissionsExt;

use berth_shared::record::SecretScope;

use super::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

/// A data directory with an empty store.
fn setup() -> (tempfile::TempDir, DataDir, Store) {
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(temp.path());
    let store = Store::open(&dir.store()).expect("store");
    (temp, dir, store)
}

fn seal_one(store: &Store, key: &SecretKey) {
    crate::store::put_sealed(store, key, &SecretScope::Fleet, "TOKEN", "value");
}

#[test]
fn the_key_file_is_0600_in_a_0700_directory_and_never_replaced() {
    let (_temp, dir, _store) = setup();
    let key = create(&dir).expect("create");
    assert_eq!(mode(&dir.secrets_key()), 0o600);
    assert_eq!(mode(&dir.keys()), 0o700);
    let bytes = std::fs::read(dir.secrets_key()).expect("read");
    assert_eq!(bytes, key.bytes());
    let refused = create(&dir).expect_err("a second key");
    assert!(refused.to_string().contains("exists already"), "{refused}");
}

#[test]
fn a_store_with_nothing_sealed_gets_a_key_once() {
    let (_temp, dir, store) = setup();
    let first = load(&dir, &store).expect("load");
    assert!(first.made);
    assert_eq!(mode(&dir.secrets_key()), 0o600);
    let again = load(&dir, &store).expect("load again");
    assert!(!again.made);
    assert_eq!(again.key.id(), first.key.id());
}

#[test]
fn sealed_secrets_without_their_key_are_refused_naming_the_file() {
    let (_temp, dir, store) = setup();
    let key = create(&dir).expect("create");
    seal_one(&store, &key);
    std::fs::remove_file(dir.secrets_key()).expect("remove the key");
    let refused = load(&dir, &store).expect_err("no key").to_string();
    assert!(refused.contains("keys/secrets.key is missing"), "{refused}");
    assert!(refused.contains(key.id().as_str()), "{refused}");
    assert!(
        !dir.secrets_key().exists(),
        "no new key over sealed secrets"
    );

    let other = SecretKey::generate();
    write_key(&dir, &dir.secrets_key(), &other).expect("write");
    let refused = load(&dir, &store).expect_err("wrong key").to_string();
    assert!(
        refused.contains(&format!("holds key {}", other.id())),
        "{refused}"
    );
    std::fs::write(dir.secrets_key(), [1u8; 31]).expect("write");
    let refused = load(&dir, &store).expect_err("damaged").to_string();
    assert!(refused.contains("31 bytes"), "{refused}");
}

#[test]
fn an_interrupted_rotation_is_undone_before_the_reseal_and_finished_after() {
    let (_temp, dir, store) = setup();
    let old = create(&dir).expect("create");
    seal_one(&store, &old);
    let new = SecretKey::generate();

    // Stopped after writing the new key, before resealing: undone.
    write_key(&dir, &dir.secrets_key_new(), &new).expect("write");
    let loaded = load(&dir, &store).expect("load");
    assert_eq!(
        (loaded.key.id(), loaded.rotation),
        (old.id(), Some("undone"))
    );
    assert!(!dir.secrets_key_new().exists());

    // Stopped after resealing, before the rename: finished.
    write_key(&dir, &dir.secrets_key_new(), &new).expect("write");
    store.reseal(&old, &new).expect("reseal");
    let loaded = load(&dir, &store).expect("load");
    assert_eq!(
        (loaded.key.id(), loaded.rotation),
        (new.id(), Some("finished"))
    );
    assert!(!dir.secrets_key_new().exists());
    assert_eq!(std::fs::read(dir.secrets_key()).expect("read"), new.bytes());
    assert_eq!(mode(&dir.secrets_key()), 0o600);
}
