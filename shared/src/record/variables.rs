//! A deployment's variables as it ran with them: each name with its value
//! and where the value came from. The list is a snapshot taken when the
//! deployment is made, so a later change to an environment never rewrites
//! what an earlier deployment used; a retry or redeploy runs with the same.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a variable's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VariableSource {
    /// The manifest's `[env]` table.
    Manifest,
    /// The manifest's `[container] env` table (the container's own).
    Container,
    /// The environment's variables (`berth env set APP/ENV --var`).
    Environment,
    /// A secret (`berth secret set`): its value is never in the record.
    Secret,
}

const SOURCES: [VariableSource; 4] = [
    VariableSource::Manifest,
    VariableSource::Container,
    VariableSource::Environment,
    VariableSource::Secret,
];

impl VariableSource {
    pub fn as_str(self) -> &'static str {
        match self {
            VariableSource::Manifest => "manifest",
            VariableSource::Container => "container",
            VariableSource::Environment => "environment",
            VariableSource::Secret => "secret",
        }
    }
}

impl std::str::FromStr for VariableSource {
    type Err = String;

    fn from_str(text: &str) -> Result<VariableSource, String> {
        SOURCES
            .into_iter()
            .find(|source| source.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "`{text}` is not a variable source (manifest, container, environment or secret)"
                )
            })
    }
}

/// One variable of a deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Variable {
    pub name: String,
    /// The value; `***` for a secret.
    pub value: String,
    pub source: VariableSource,
    /// A secret's version when the deployment was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_version: Option<u64>,
    /// Where a secret is kept: its app and environment, or `*` for the
    /// fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_scope: Option<super::SecretScope>,
}

impl Variable {
    /// The version of the secret this variable was made from, when it is
    /// one.
    pub fn secret_ref(&self) -> Option<super::SecretRef> {
        Some(super::SecretRef {
            name: self.name.clone(),
            scope: self.secret_scope.clone()?,
            version: self.secret_version?,
        })
        .filter(|_| self.source == VariableSource::Secret)
    }
}

impl super::Deployment {
    /// The environment its scripts and its container get: its variables'
    /// values (a secret's is added where the task is sent), or, in a
    /// record from before variables, the container's own env.
    pub fn env(&self) -> BTreeMap<String, String> {
        if self.variables.is_empty() {
            return self
                .manifest
                .container
                .as_ref()
                .map(|container| container.env.clone())
                .unwrap_or_default();
        }
        self.variables
            .iter()
            .filter(|variable| variable.source != VariableSource::Secret)
            .map(|variable| (variable.name.clone(), variable.value.clone()))
            .collect()
    }
}

/// The variables a deployment runs with, from its sources in order of
/// precedence (a later one replaces an earlier one of the same name):
/// the manifest's `[env]`, its `[container] env`, then the environment's.
pub fn snapshot(
    manifest_env: &BTreeMap<String, String>,
    container_env: &BTreeMap<String, String>,
    environment: &BTreeMap<String, String>,
) -> Vec<Variable> {
    let mut merged: BTreeMap<&str, (&str, VariableSource)> = BTreeMap::new();
    for (source, values) in [
        (VariableSource::Manifest, manifest_env),
        (VariableSource::Container, container_env),
        (VariableSource::Environment, environment),
    ] {
        for (name, value) in values {
            merged.insert(name, (value, source));
        }
    }
    merged
        .into_iter()
        .map(|(name, (value, source))| Variable {
            name: name.to_string(),
            value: value.to_string(),
            source,
            secret_version: None,
            secret_scope: None,
        })
        .collect()
}

/// `variables` with the secrets a deployment uses added (a secret replaces
/// a variable of the same name); their values are `***` in the record.
pub fn with_secrets(variables: Vec<Variable>, secrets: &[super::SecretRef]) -> Vec<Variable> {
    let mut merged: BTreeMap<String, Variable> = variables
        .into_iter()
        .map(|variable| (variable.name.clone(), variable))
        .collect();
    for secret in secrets {
        merged.insert(
            secret.name.clone(),
            Variable {
                name: secret.name.clone(),
                value: crate::masking::MASK.to_string(),
                source: VariableSource::Secret,
                secret_version: Some(secret.version),
                secret_scope: Some(secret.scope.clone()),
            },
        );
    }
    merged.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn the_environment_overrides_the_container_which_overrides_the_manifest() {
        let got = snapshot(
            &map(&[("A", "manifest"), ("B", "manifest"), ("C", "manifest")]),
            &map(&[("B", "container"), ("D", "container")]),
            &map(&[("C", "environment"), ("D", "environment")]),
        );
        let said: Vec<(&str, &str, &str)> = got
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str(), v.source.as_str()))
            .collect();
        assert_eq!(
            said,
            [
                ("A", "manifest", "manifest"),
                ("B", "container", "container"),
                ("C", "environment", "environment"),
                ("D", "environment", "environment"),
            ]
        );
    }
}
