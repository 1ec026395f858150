//! `berth-controller migrate --from DATA_DIR --to postgres://...`: moves an
//! installation's sled store into an empty PostgreSQL database, counts
//! every kind of record and the log lines on both sides, and only when
//! they all match records the database in `DATA_DIR/store.toml`, so the
//! next `serve` on that directory uses it. The sled store stays where it
//! was, untouched, as the way back.

use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::paths::DataDir;
use crate::store::{Copied, Store};
use crate::store_choice::{self, StoreArgs};

/// Copies the store of the data directory `from` into `to`.
pub async fn migrate(from: &Path, to: &StoreArgs, progress: impl Fn(&str, u64)) -> Result<Copied> {
    let dir = DataDir::new(from);
    if !dir.ca_cert().exists() {
        bail!(
            "{} is not a data directory made by `berth-controller init` (it has no pki/ca.pem)",
            from.display()
        );
    }
    if dir.store_choice().exists() {
        bail!(
            "{} keeps its store in PostgreSQL already ({}); there is no sled store to move",
            from.display(),
            dir.store_choice().display()
        );
    }
    let Some(url) = &to.url else {
        bail!(
            "give the database to move the store into with --to postgres://USER@HOST:PORT/DATABASE"
        );
    };
    let source = Store::open(&dir.store()).with_context(|| {
        format!(
            "open the sled store in {}; stop the controller first (systemctl stop berth-controller)",
            dir.store().display()
        )
    })?;
    let target = store_choice::open_postgres(url, to)?;
    let copied = source
        .copy_into(&target, progress)
        .context("copy the store into PostgreSQL")?;
    if !copied.complete() {
        bail!(
            "the copy does not match the source ({}); the data directory still uses its sled store; empty the database and run migrate again",
            mismatches(&copied)
        );
    }
    target.flush().await.context("flush the PostgreSQL store")?;
    store_choice::record(&dir, to)?;
    Ok(copied)
}

fn mismatches(copied: &Copied) -> String {
    let mut found: Vec<String> = copied
        .trees
        .iter()
        .filter(|(_, source, target)| source != target)
        .map(|(name, source, target)| format!("{name}: {source} in sled, {target} in PostgreSQL"))
        .collect();
    let (source, target) = copied.log_lines;
    if source != target {
        found.push(format!(
            "log lines: {source} in sled, {target} in PostgreSQL"
        ));
    }
    found.join("; ")
}

/// The counts and what to do next, as `migrate` prints them.
pub fn report(from: &Path, copied: &Copied) -> String {
    let mut out = format!("{:<22} {:>12} {:>12}\n", "records", "sled", "postgresql");
    for (tree, source, copy) in &copied.trees {
        out.push_str(&format!("{tree:<22} {source:>12} {copy:>12}\n"));
    }
    let (source, copy) = copied.log_lines;
    out.push_str(&format!("{:<22} {source:>12} {copy:>12}\n", "log lines"));
    out.push_str(&format!(
        "moved the store of {} into PostgreSQL; every count matches, and the directory now uses it: start the controller again (the sled store in {} is left as it was)\n",
        from.display(),
        DataDir::new(from).store().display()
    ));
    out
}
