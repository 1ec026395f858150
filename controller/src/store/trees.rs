//! The store's trees: one list of every tree (its field and its name),
//! from which the struct, the opening and the walk over all of them
//! (copies, counts) are made, so a new tree cannot be left out of one.

use std::path::Path;

use super::{StoreError, kv};

macro_rules! trees {
    ($($field:ident = $name:literal,)+) => {
        /// One open database and its trees.
        pub(super) struct Trees {
            pub(super) db: kv::Db,
            $(pub(super) $field: kv::Tree,)+
        }

        impl Trees {
            pub(super) fn of(db: kv::Db) -> Result<Trees, StoreError> {
                Ok(Trees {
                    $($field: db.open_tree($name)?,)+
                    db,
                })
            }

            /// Every tree with its name, in the order of the list.
            pub(super) fn all(&self) -> Vec<(&'static str, &kv::Tree)> {
                vec![$(($name, &self.$field),)+]
            }
        }
    };
}

trees! {
    deployments = "deployments",
    idx_app = "idx_app_env",
    idx_status = "idx_status",
    idx_user = "idx_user",
    idx_idempotency = "idx_idempotency",
    logs = "log_chunks",
    agents = "agents",
    agent_names = "agent_names",
    principals = "principals",
    tokens = "tokens",
    registries = "registries",
    users = "users",
    api_tokens = "api_tokens",
    sessions = "sessions",
    setup_links = "setup_links",
    blobs = "blobs",
    blob_grants = "blob_grants",
    audit = "audit",
    ratings = "ratings",
    environments = "environments",
    secret_names = "secret_names",
    secrets = "secrets",
    jobs = "jobs",
    builds = "builds",
    webhooks = "webhooks",
    hooks = "hooks",
    hook_seen = "hook_seen",
    pushes = "pushes",
    webhook_outbox = "webhook_outbox",
    webhook_deliveries = "webhook_deliveries",
    meta = "meta",
}

impl Trees {
    /// The first tree that holds records, if any: a store to copy or
    /// restore into must hold none. `meta` is left out: opening a store
    /// writes its markers there, which the copy or backup writes over.
    pub(super) fn holding_records(&self) -> Result<Option<&'static str>, StoreError> {
        for (name, tree) in self.all() {
            if name != "meta" && !tree.is_empty()? {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }

    pub(super) fn open(dir: &Path) -> Result<Trees, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::LowSpace)
            .open()?;
        Trees::of(kv::Db::Sled(db))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first migration makes a table for every tree, and no other:
    /// a tree added here without its migration would fail on PostgreSQL only.
    #[test]
    fn the_first_migration_makes_a_table_for_every_tree() {
        let sql = include_str!("../../migrations/V1__trees.sql");
        let dir = tempfile::tempdir().expect("tempdir");
        let trees = Trees::open(dir.path()).expect("open");
        let names: Vec<&str> = trees.all().into_iter().map(|(name, _)| name).collect();
        for name in &names {
            assert!(
                sql.contains(&format!("CREATE TABLE kv_{name} (")),
                "no table for the tree `{name}` in V1__trees.sql"
            );
        }
        assert_eq!(sql.matches("CREATE TABLE ").count(), names.len());
    }
}
