//! Records of the secret store: where a secret applies ([`SecretScope`]:
//! one app in one environment, or the whole fleet), a secret as `berth
//! secret ls` shows it ([`SecretView`], never its value), and a reference
//! to one version of a secret ([`SecretRef`]), which a deployment keeps so
//! that it, a retry or a queued start uses the values it was made with.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Timestamp;

/// The largest value a secret holds, in bytes (64 KiB).
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// Where a secret applies. Written `APP/ENV` (`web/prod`) or `*` (every
/// app in every environment, for the names a manifest asks for).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecretScope {
    App { app: String, environment: String },
    Fleet,
}

impl SecretScope {
    /// The scope of one app in one environment, both checked like the
    /// manifest's names (1 to 63 of `a-z`, `0-9` and `-`).
    pub fn app(app: &str, environment: &str) -> Result<SecretScope, String> {
        for (what, name) in [("app", app), ("environment", environment)] {
            crate::manifest::check_environment(name)
                .map_err(|reason| format!("the {what} name {reason}"))?;
        }
        Ok(SecretScope::App {
            app: app.to_string(),
            environment: environment.to_string(),
        })
    }

    pub fn is_fleet(&self) -> bool {
        matches!(self, SecretScope::Fleet)
    }
}

impl fmt::Display for SecretScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretScope::App { app, environment } => write!(f, "{app}/{environment}"),
            SecretScope::Fleet => f.write_str("*"),
        }
    }
}

impl FromStr for SecretScope {
    type Err = String;

    /// `APP/ENV`, or `*` for the fleet.
    fn from_str(text: &str) -> Result<SecretScope, String> {
        if text == "*" {
            return Ok(SecretScope::Fleet);
        }
        let Some((app, environment)) = text.split_once('/') else {
            return Err(format!(
                "`{}` is not a scope; write APP/ENV (like web/prod), or `*` (--fleet) for every app",
                crate::text::clip(text, 60)
            ));
        };
        SecretScope::app(app, environment)
    }
}

impl Serialize for SecretScope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SecretScope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SecretScope, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One version of one secret: what a deployment keeps of the secrets it
/// uses (never a value).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretRef {
    pub name: String,
    pub scope: SecretScope,
    pub version: u64,
}

/// A secret as `berth secret ls` and the API show it: its name, where it
/// applies, its newest version and who changed it when; never its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretView {
    pub name: String,
    pub scope: SecretScope,
    /// The newest version (1 for the first value; each `set` adds one).
    pub version: u64,
    /// When the newest version was set, and by whom.
    pub updated_at: Timestamp,
    pub updated_by: String,
    /// When the first version was set, and by whom.
    pub created_at: Timestamp,
    pub created_by: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_and_write_as_app_slash_env_or_star() {
        let scope: SecretScope = "web/prod".parse().expect("a scope");
        assert_eq!(scope, SecretScope::app("web", "prod").expect("valid"));
        assert_eq!(scope.to_string(), "web/prod");
        assert_eq!("*".parse(), Ok(SecretScope::Fleet));
        assert_eq!(SecretScope::Fleet.to_string(), "*");
        for bad in [
            "web",
            "web/",
            "/prod",
            "Web/prod",
            "web/prod/x",
            "a b/c",
            "",
            "**",
        ] {
            assert!(bad.parse::<SecretScope>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&SecretRef {
            name: "DB_URL".into(),
            scope: scope.clone(),
            version: 3,
        })
        .expect("json");
        assert_eq!(json, r#"{"name":"DB_URL","scope":"web/prod","version":3}"#);
        let back: SecretRef = serde_json::from_str(&json).expect("parsed");
        assert_eq!(back.scope, scope);
        assert!(serde_json::from_str::<SecretScope>(r#""nope""#).is_err());
    }
}
