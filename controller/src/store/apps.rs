//! The apps and environments that have deployments, read from the keys of
//! `idx_app_env` (`app \0 env \0 id`) by seeking: one seek per app and
//! environment, and one more for its newest deployment, however many
//! deployments each has. `berth status`, the app catalogue and resolving
//! an app's environment all start here.

use berth_shared::record::Deployment;

use super::keys::{Heads, app_prefix, id_from_suffix, name_prefix};
use super::{Store, StoreError};

const TREE: &str = "idx_app_env";

impl Store {
    /// Every app+environment pair that has deployments, by app, then
    /// environment.
    pub fn app_environments(&self) -> Result<Vec<(String, String)>, StoreError> {
        let t = self.t()?;
        Heads::new(&t.idx_app, TREE, b"", 2)
            .map(|head| Ok(split_head(&head?)))
            .collect()
    }

    /// The environments `app` has deployments in, by name.
    pub fn environments_of(&self, app: &str) -> Result<Vec<String>, StoreError> {
        let t = self.t()?;
        Heads::new(&t.idx_app, TREE, &name_prefix(app), 2)
            .map(|head| Ok(split_head(&head?).1))
            .collect()
    }

    /// Whether `app` has a deployment in any environment.
    pub fn has_app(&self, app: &str) -> Result<bool, StoreError> {
        let mut keys = self.t()?.idx_app.scan_prefix(name_prefix(app));
        Ok(keys.next().transpose()?.is_some())
    }

    /// The newest deployment of `app` in `environment` (the highest id,
    /// which is the latest created), read from the end of its keys.
    pub fn newest_deployment(
        &self,
        app: &str,
        environment: &str,
    ) -> Result<Option<Deployment>, StoreError> {
        let t = self.t()?;
        for key in t
            .idx_app
            .scan_prefix(app_prefix(app, environment))
            .keys()
            .rev()
        {
            let key = key?;
            let id = id_from_suffix(&key).ok_or_else(|| StoreError::Corrupt {
                tree: TREE,
                reason: "index key shorter than an id".into(),
            })?;
            // A key may outlive its record for a moment (a purge between
            // the two reads); the one before it is then the newest.
            if let Some(deployment) = self.find_deployment(id)? {
                return Ok(Some(deployment));
            }
        }
        Ok(None)
    }
}

/// The app and environment of an `app \0 env \0` head.
fn split_head(head: &[u8]) -> (String, String) {
    let mut parts = head.split(|byte| *byte == 0);
    let mut next = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let app = next();
    (app, next())
}

#[cfg(test)]
mod tests {
    use berth_shared::id::DeploymentId;
    use berth_shared::state::DeploymentStatus;
    use ulid::Ulid;

    use super::*;

    /// A store holding deployments of (app, environment) made at `ms`.
    fn store_with(rows: &[(u64, &str, &str)]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        for (ms, app, environment) in rows {
            let mut deployment = crate::testing::deployment(&["h1"], 0);
            deployment.id = DeploymentId(Ulid::from_parts(*ms, u128::from(*ms)));
            deployment.app = (*app).into();
            deployment.environment = (*environment).into();
            deployment.version = ms.to_string();
            deployment.status = DeploymentStatus::Deployed;
            store
                .create_deployment(&deployment, true, false)
                .expect("create");
        }
        (dir, store)
    }

    const ROWS: [(u64, &str, &str); 7] = [
        (1, "web", "prod"),
        (2, "api", "prod"),
        (3, "web", "staging"),
        (4, "web", "prod"),
        (5, "web-admin", "prod"),
        (6, "api", "prod"),
        (7, "web", "prod"),
    ];

    #[test]
    fn each_app_and_environment_comes_once_in_order() {
        let (_dir, store) = store_with(&ROWS);
        let pairs = store.app_environments().expect("pairs");
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(app, env)| (app.as_str(), env.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("api", "prod"),
                ("web", "prod"),
                ("web", "staging"),
                ("web-admin", "prod"),
            ]
        );
        assert_eq!(
            store.environments_of("web").expect("envs"),
            ["prod", "staging"]
        );
        assert_eq!(store.environments_of("web-admin").expect("envs"), ["prod"]);
        assert!(store.environments_of("we").expect("envs").is_empty());
        assert!(store.has_app("web").expect("has"));
        assert!(!store.has_app("we").expect("has"), "a prefix is not an app");
        assert!(!store.has_app("nothing").expect("has"));
    }

    #[test]
    fn the_newest_deployment_is_the_last_key() {
        let (_dir, store) = store_with(&ROWS);
        let newest = |app: &str, env: &str| {
            store
                .newest_deployment(app, env)
                .expect("newest")
                .map(|deployment| deployment.version)
        };
        assert_eq!(newest("web", "prod").as_deref(), Some("7"));
        assert_eq!(newest("web", "staging").as_deref(), Some("3"));
        assert_eq!(newest("api", "prod").as_deref(), Some("6"));
        assert_eq!(newest("web", "dev"), None);
        // A key that outlived its record (read between a purge's two
        // steps) is passed over for the one before it.
        let gone = DeploymentId(Ulid::from_parts(7, 7));
        let t = store.t().expect("trees");
        t.deployments.remove(gone.to_bytes()).expect("remove");
        assert_eq!(newest("web", "prod").as_deref(), Some("4"));
    }

    #[test]
    fn an_empty_store_has_no_apps() {
        let (_dir, store) = store_with(&[]);
        assert!(store.app_environments().expect("pairs").is_empty());
    }
}
