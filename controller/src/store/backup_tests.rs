//! A backup restores into either engine entry for entry, and a damaged
//! one is refused before anything is written.

use super::Store;
use super::kv::IVec;

/// Every entry of every tree, by tree name.
fn contents(store: &Store) -> Vec<(String, Vec<(IVec, IVec)>)> {
    let trees = store.t().expect("open");
    trees
        .all()
        .into_iter()
        .map(|(name, tree)| {
            let entries = tree.iter().map(|entry| entry.expect("entry")).collect();
            (name.to_string(), entries)
        })
        .collect()
}

/// A sled store with entries in a few trees, one of them empty between.
fn source(dir: &std::path::Path) -> Store {
    let store = Store::open(dir).expect("open");
    let trees = store.t().expect("open");
    for n in 0..1_200u32 {
        trees
            .deployments
            .insert(n.to_be_bytes(), format!("deployment {n}").into_bytes())
            .expect("insert");
    }
    trees
        .logs
        .insert(b"chunk", b"lines".as_slice())
        .expect("insert");
    trees
        .meta
        .insert(b"generation", &7u64.to_be_bytes())
        .expect("insert");
    trees
        .webhook_deliveries
        .insert(b"last", vec![0u8; 70_000])
        .expect("insert");
    store
}

/// Restore targets: a new sled store, and a new PostgreSQL schema when a
/// server is there (the engine tests' rule, `kv/tests.rs`).
fn targets() -> Vec<(&'static str, Store, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut targets = vec![("sled", Store::open(dir.path()).expect("open"), dir)];
    if let Some(pool_url) = super::kv::tests::fresh_url() {
        let settings = super::kv::pg::Settings::new(&pool_url, None, None).expect("settings");
        let store = Store::open_postgres(settings).expect("open");
        targets.push(("postgres", store, tempfile::tempdir().expect("tempdir")));
    }
    targets
}

#[test]
fn a_backup_restores_entry_for_entry_into_either_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = source(dir.path());
    let mut file = Vec::new();
    let written = store.backup(&mut file).expect("backup");
    let count = |name: &str| {
        written
            .trees
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| *c)
    };
    assert_eq!(count("deployments"), Some(1_200));
    assert_eq!(count("agents"), Some(0));
    let expected = contents(&store);
    for (engine, target, _keep) in targets() {
        let restored = target.restore(|| Ok(file.as_slice())).expect("restore");
        assert_eq!(restored.sha256, written.sha256, "{engine}");
        let mut got = contents(&target);
        let mut want = expected.clone();
        // `meta` also holds the markers the target wrote when it opened.
        for side in [&mut got, &mut want] {
            side.retain(|(name, _)| name != "meta");
        }
        assert_eq!(got, want, "{engine}");
        let generation = target
            .t()
            .expect("open")
            .meta
            .get(b"generation")
            .expect("get");
        assert_eq!(
            generation.as_deref(),
            Some(7u64.to_be_bytes().as_slice()),
            "{engine}"
        );
        // A store that holds records is not restored into.
        let again = target.restore(|| Ok(file.as_slice())).expect_err("refused");
        assert!(
            again.to_string().contains("already holds records"),
            "{engine}: {again}"
        );
    }
}

#[test]
fn a_damaged_backup_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = source(dir.path());
    let mut file = Vec::new();
    store.backup(&mut file).expect("backup");
    // Flip one byte inside the compressed stream, and cut the end off.
    let mut flipped = file.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    let cut = file[..file.len() - 40].to_vec();
    for damaged in [flipped, cut] {
        for (engine, target, _keep) in targets() {
            let refused = target
                .restore(|| Ok(damaged.as_slice()))
                .expect_err("refused");
            assert!(
                refused.to_string().contains("nothing was restored"),
                "{engine}: {refused}"
            );
            let trees = target.t().expect("open");
            assert!(trees.deployments.is_empty().expect("empty"), "{engine}");
        }
    }
}
