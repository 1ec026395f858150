//! The `[secrets]` section: how the deployment uses its secrets. Every
//! secret of the app's environment (`berth secret set APP/ENV NAME`) is
//! given to the scripts and the container as a variable without being
//! named here; a table entry names a fleet-wide secret to use too
//! (`NAME = {}`), or gives a secret to the container as a file instead of
//! a variable (`NAME = { file = "/run/secrets/NAME" }`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Value;

use super::{Checker, join};
use crate::variables;

/// Longest path of a secret's file in the container.
pub const MAX_FILE_PATH: usize = 255;

/// How a deployment uses one secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretUse {
    /// An absolute path in the container where it is a file (mode 0400)
    /// instead of a variable; scripts still get it as a variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl Checker {
    pub(super) fn secrets(
        &mut self,
        value: &Value,
        has_container: bool,
    ) -> BTreeMap<String, SecretUse> {
        let mut uses = BTreeMap::new();
        let Some(table) = self.table("secrets", value) else {
            return uses;
        };
        if table.len() > variables::MAX_COUNT {
            self.error(
                "secrets",
                format!(
                    "names {} secrets; at most {}",
                    table.len(),
                    variables::MAX_COUNT
                ),
            );
            return uses;
        }
        for (name, entry) in table {
            let path = join("secrets", name);
            if let Err(err) = variables::check_name(name) {
                self.error(&path, err);
                continue;
            }
            let Some(entry) = self.table(&path, entry) else {
                continue;
            };
            self.unknown_keys(&path, entry, &["file"]);
            let file = entry.get("file").and_then(|file| {
                let file_path = join(&path, "file");
                let file = self.string(&file_path, file)?;
                if !has_container {
                    self.error(
                        &file_path,
                        "puts the secret in the container, and there is no [container]; scripts get every secret as a variable, so remove `file`",
                    );
                    return None;
                }
                match check_file(file) {
                    Ok(()) => Some(file.to_string()),
                    Err(message) => {
                        self.error(&file_path, message);
                        None
                    }
                }
            });
            uses.insert(name.clone(), SecretUse { file });
        }
        let mut seen = BTreeMap::new();
        for (name, used) in &uses {
            let Some(file) = &used.file else { continue };
            if let Some(other) = seen.insert(file.clone(), name.clone()) {
                self.error(
                    &join(&join("secrets", name), "file"),
                    format!("`{file}` is also the file of secret {other}; give each its own path"),
                );
            }
        }
        uses
    }
}

/// A file path in the container: absolute, plain, and not a directory.
fn check_file(file: &str) -> Result<(), String> {
    let plain = file.starts_with('/')
        && !file.ends_with('/')
        && file.len() <= MAX_FILE_PATH
        && !file.contains('\0')
        && file
            .split('/')
            .skip(1)
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if plain {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a file path in the container; give an absolute path of at most {MAX_FILE_PATH} characters without `.`, `..` or `//`, e.g. /run/secrets/db_password",
            crate::text::clip(file, 80)
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::Manifest;

    fn issues(text: &str) -> Vec<String> {
        match Manifest::parse(text) {
            Ok(_) => Vec::new(),
            Err(err) => err
                .issues
                .iter()
                .map(|issue| format!("{}: {}", issue.path, issue.message))
                .collect(),
        }
    }

    #[test]
    fn parses_secret_uses() {
        let manifest = Manifest::parse(
            "app = \"web\"\n[target]\nhosts = [\"a\"]\n[container]\nimage = \"web:1\"\n[secrets]\nAPI_KEY = {}\nDB_PASSWORD = { file = \"/run/secrets/db\" }\n",
        )
        .expect("valid");
        assert_eq!(manifest.secrets.len(), 2);
        assert_eq!(manifest.secrets["API_KEY"].file, None);
        assert_eq!(
            manifest.secrets["DB_PASSWORD"].file.as_deref(),
            Some("/run/secrets/db")
        );
    }

    #[test]
    fn refuses_bad_secret_uses_naming_each() {
        let found = issues(
            "app = \"web\"\n[target]\nhosts = [\"a\"]\n[container]\nimage = \"web:1\"\n[secrets]\nBERTH_X = {}\nA = \"yes\"\nB = { file = \"run/x\" }\nC = { file = \"/run/../etc/shadow\" }\nD = { mode = 1 }\nE = { file = \"/run/s\" }\nF = { file = \"/run/s\" }\n",
        );
        let expect = [
            "secrets.A: ",
            "secrets.B.file: `run/x` is not a file path",
            "secrets.BERTH_X: `BERTH_X` starts with BERTH_",
            "secrets.C.file: `/run/../etc/shadow` is not a file path",
            "secrets.D.mode: ",
            "secrets.F.file: `/run/s` is also the file of secret E",
        ];
        assert_eq!(found.len(), expect.len(), "{found:#?}");
        for prefix in expect {
            assert!(
                found.iter().any(|issue| issue.starts_with(prefix)),
                "{prefix} not in {found:#?}"
            );
        }
        let scripts = issues(
            "app = \"web\"\n[target]\nhosts = [\"a\"]\n[secrets]\nA = { file = \"/run/a\" }\n",
        );
        assert!(
            scripts[0].contains("there is no [container]"),
            "{scripts:?}"
        );
    }
}
