//! Environments as records: one per app and environment in the
//! `environments` tree, keyed `app \0 environment` so that an app's
//! environments are one contiguous prefix, with its type, rules and
//! variables.
//!
//! At most one environment of an app is its default. The name of that one
//! is kept in `meta` (`default_environment \0 app \0`), and every change
//! that adds, changes or removes an environment reads and writes it in
//! the same transaction as the records, so two changes at once can never
//! leave two defaults (sled runs transactions one at a time).

use std::collections::BTreeMap;

use super::kv::Transactional;
use super::kv::{TxError, TxTree};
use berth_shared::record::{EnvironmentKind, Timestamp};
use serde::{Deserialize, Serialize};

use super::keys::{default_key, environment_key, name_prefix};
use super::{Store, StoreError, Thing, decode, encode};

const TREE: &str = "environments";

/// An app's environment as stored. A field added later carries
/// `#[serde(default)]`, so records written before it still read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentRecord {
    pub app: String,
    pub name: String,
    pub kind: EnvironmentKind,
    /// The environment a deploy of the app naming none goes to; at most
    /// one per app.
    #[serde(default)]
    pub is_default: bool,
    /// Deploys, rollbacks and stops here need an approval.
    #[serde(default)]
    pub protected: bool,
    /// Approvals a protected environment needs: 1 (an admin's) or 2 (two
    /// operators', or an admin's).
    #[serde(default = "one")]
    pub approvals: u8,
    /// When deploys are taken (`ops::windows`), as written; none: always.
    #[serde(default)]
    pub window: Option<String>,
    /// Variables that override the manifest's `[env]` at the next deploy.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    pub created_at: Timestamp,
    pub created_by: String,
    pub updated_at: Timestamp,
    pub updated_by: String,
}

fn one() -> u8 {
    1
}

/// A transaction's refusal or failure.
type Abort = TxError;

impl Store {
    /// `app`'s environment `name`, if it has a record.
    pub fn get_environment(
        &self,
        app: &str,
        name: &str,
    ) -> Result<Option<EnvironmentRecord>, StoreError> {
        decoded(self.t()?.environments.get(environment_key(app, name))?)
    }

    /// The environments of `app` (of every app when `None`), by app, then
    /// name.
    pub fn list_environments(
        &self,
        app: Option<&str>,
    ) -> Result<Vec<EnvironmentRecord>, StoreError> {
        let trees = self.t()?;
        let values = match app {
            Some(app) => trees.environments.scan_prefix(name_prefix(app)),
            None => trees.environments.iter(),
        };
        values.values().map(|bytes| decode(TREE, &bytes?)).collect()
    }

    /// The name of `app`'s default environment, if it has one.
    pub fn default_environment(&self, app: &str) -> Result<Option<String>, StoreError> {
        let name = self.t()?.meta.get(default_key(app))?;
        Ok(name.map(|name| String::from_utf8_lossy(&name).into_owned()))
    }

    /// Adds an environment; `Conflict` when the app has one of that name.
    /// When it is the default, the app's earlier default stops being it.
    pub fn add_environment(&self, record: &EnvironmentRecord) -> Result<(), StoreError> {
        let trees = self.t()?;
        (&trees.environments, &trees.meta).transaction(|(environments, meta)| {
            if read(environments, &record.app, &record.name)?.is_some() {
                return Err(Abort::Abort(StoreError::Conflict(format!(
                    "environment `{}/{}` exists already; `berth env set` changes it",
                    record.app, record.name
                ))));
            }
            write(environments, meta, record)
        })?;
        Ok(())
    }

    /// The app's environment `record` names, adding `record` when there is
    /// none; whether it was added now.
    pub fn ensure_environment(
        &self,
        record: &EnvironmentRecord,
    ) -> Result<(EnvironmentRecord, bool), StoreError> {
        // The common case, an environment that exists, needs no transaction.
        if let Some(existing) = self.get_environment(&record.app, &record.name)? {
            return Ok((existing, false));
        }
        let trees = self.t()?;
        let ensured = (&trees.environments, &trees.meta).transaction(|(environments, meta)| {
            if let Some(existing) = read(environments, &record.app, &record.name)? {
                return Ok((existing, false));
            }
            write(environments, meta, record)?;
            Ok((record.clone(), true))
        })?;
        Ok(ensured)
    }

    /// Changes an environment in one transaction: `change` sees the stored
    /// record (it may run more than once) and may refuse, which changes
    /// nothing. `NotFound` when there is no such environment.
    pub fn update_environment<T, E>(
        &self,
        app: &str,
        name: &str,
        change: impl Fn(&mut EnvironmentRecord) -> Result<T, E>,
    ) -> Result<Result<(EnvironmentRecord, T), E>, StoreError> {
        let trees = self.t()?;
        let changed = (&trees.environments, &trees.meta).transaction(|(environments, meta)| {
            let mut record = read(environments, app, name)?.ok_or_else(|| not_found(app, name))?;
            let outcome = match change(&mut record) {
                Ok(outcome) => outcome,
                Err(refusal) => return Ok(Err(refusal)),
            };
            // The change may not move the record to another key.
            record.app = app.to_string();
            record.name = name.to_string();
            write(environments, meta, &record)?;
            Ok(Ok((record, outcome)))
        })?;
        Ok(changed)
    }

    /// Removes an environment once `check` allows the stored record; the
    /// app then has no default if it was that one. `NotFound` when there
    /// is no such environment.
    pub fn remove_environment<E>(
        &self,
        app: &str,
        name: &str,
        check: impl Fn(&EnvironmentRecord) -> Result<(), E>,
    ) -> Result<Result<EnvironmentRecord, E>, StoreError> {
        let trees = self.t()?;
        let removed = (&trees.environments, &trees.meta).transaction(|(environments, meta)| {
            let record = read(environments, app, name)?.ok_or_else(|| not_found(app, name))?;
            if let Err(refusal) = check(&record) {
                return Ok(Err(refusal));
            }
            environments.remove(environment_key(app, name))?;
            let key = default_key(app);
            if meta
                .get(&key)?
                .is_some_and(|default| default == name.as_bytes())
            {
                meta.remove(key)?;
            }
            Ok(Ok(record))
        })?;
        Ok(removed)
    }
}

/// Stores `record` and keeps the app's default right: when `record` is
/// the default, the earlier default stops being it (a change by the same
/// person at the same time); when it is not, the app has no default if
/// it was this one.
fn write(
    environments: &TxTree<'_>,
    meta: &TxTree<'_>,
    record: &EnvironmentRecord,
) -> Result<(), Abort> {
    let key = default_key(&record.app);
    let current = meta
        .get(&key)?
        .map(|name| String::from_utf8_lossy(&name).into_owned());
    if record.is_default {
        if let Some(earlier) = current.filter(|earlier| *earlier != record.name)
            && let Some(mut earlier) = read(environments, &record.app, &earlier)?
        {
            earlier.is_default = false;
            earlier.updated_at = record.updated_at;
            earlier.updated_by.clone_from(&record.updated_by);
            environments.insert(
                environment_key(&earlier.app, &earlier.name),
                encode(&earlier),
            )?;
        }
        meta.insert(key, record.name.as_bytes())?;
    } else if current.as_deref() == Some(record.name.as_str()) {
        meta.remove(key)?;
    }
    environments.insert(environment_key(&record.app, &record.name), encode(record))?;
    Ok(())
}

/// An environment read inside a transaction.
fn read(
    environments: &TxTree<'_>,
    app: &str,
    name: &str,
) -> Result<Option<EnvironmentRecord>, Abort> {
    decoded(environments.get(environment_key(app, name))?).map_err(Abort::Abort)
}

fn decoded(bytes: Option<super::kv::IVec>) -> Result<Option<EnvironmentRecord>, StoreError> {
    bytes.map(|bytes| decode(TREE, &bytes)).transpose()
}

fn not_found(app: &str, name: &str) -> Abort {
    Abort::Abort(StoreError::NotFound(
        Thing::Environment,
        format!("environment `{app}/{name}`"),
    ))
}
