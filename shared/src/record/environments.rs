//! An app's environments as records (`berth env ls|show`,
//! `GET /api/v1/apps/{app}/environments`): each one's type, whether it is
//! the app's default, its protection and the variables it sets for the
//! app's next deploy there.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// What an environment is for. It names the environment's role for people
/// and tools; the rules (protection, approvals) are set apart from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentKind {
    Production,
    Staging,
    Preview,
    Development,
}

impl EnvironmentKind {
    /// Every kind, in the order help texts list them.
    pub const ALL: [EnvironmentKind; 4] = [
        EnvironmentKind::Production,
        EnvironmentKind::Staging,
        EnvironmentKind::Preview,
        EnvironmentKind::Development,
    ];

    /// The names of [`EnvironmentKind::ALL`], as `--type` takes them.
    pub const NAMES: [&'static str; 4] = ["production", "staging", "preview", "development"];

    pub fn as_str(self) -> &'static str {
        match self {
            EnvironmentKind::Production => "production",
            EnvironmentKind::Staging => "staging",
            EnvironmentKind::Preview => "preview",
            EnvironmentKind::Development => "development",
        }
    }
}

impl fmt::Display for EnvironmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EnvironmentKind {
    type Err = String;

    /// The inverse of [`EnvironmentKind::as_str`]; the error names the
    /// choices.
    fn from_str(text: &str) -> Result<EnvironmentKind, String> {
        EnvironmentKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "type `{}` is not one of production, staging, preview or development",
                    crate::text::clip(text, 40)
                )
            })
    }
}

/// One environment of an app, as the CLI and the API show it. In JSON the
/// kind is `type` and the default flag `default`, as `--type` and
/// `--default` name them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnvironmentView {
    pub app: String,
    pub name: String,
    /// `production`, `staging`, `preview` or `development`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether a deploy of the app that names no environment goes here
    /// (at most one per app).
    #[serde(rename = "default")]
    pub is_default: bool,
    /// Whether deploys, rollbacks and stops here need an approval.
    pub protected: bool,
    /// The approvals a protected environment needs: 1 (an admin's) or 2
    /// (two operators', or an admin's).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 2))]
    pub approvals: u8,
    /// When it takes deploys (`Mon-Fri 09:00-17:00 Europe/Berlin`); none:
    /// always.
    #[serde(default)]
    pub window: Option<String>,
    /// Variables set for the app here; they override the manifest's
    /// `[env]` at the next deploy.
    pub vars: BTreeMap<String, String>,
    pub created_at: Timestamp,
    pub created_by: String,
    pub updated_at: Timestamp,
    pub updated_by: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_back_from_their_names() {
        for (kind, name) in EnvironmentKind::ALL.into_iter().zip(EnvironmentKind::NAMES) {
            assert_eq!(kind.as_str(), name);
            assert_eq!(name.parse::<EnvironmentKind>(), Ok(kind));
            let json = serde_json::to_string(&kind).expect("json");
            assert_eq!(json, format!("\"{name}\""));
        }
        let refused = "prod".parse::<EnvironmentKind>().expect_err("not a kind");
        assert!(refused.contains("production, staging"), "{refused}");
    }
}
