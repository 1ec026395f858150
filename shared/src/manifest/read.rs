//! Reading values out of the parsed TOML for the [`Checker`]: each reader
//! reports a wrong value as an issue at its key path and yields `None`
//! (or an empty value), so checking goes on and every mistake is reported.

use std::time::Duration;

use toml::{Table, Value};

use super::{Checker, Issue, MAX_SCRIPT_TIMEOUT};
use crate::labels::{Labels, check_label_part};

impl Checker {
    pub(super) fn error(&mut self, path: &str, message: impl Into<String>) {
        self.issues.push(Issue {
            path: path.to_string(),
            message: message.into(),
        });
    }

    pub(super) fn unknown_keys(&mut self, prefix: &str, table: &Table, known: &[&str]) {
        for key in table.keys().filter(|key| !known.contains(&key.as_str())) {
            let path = join(prefix, key);
            self.error(
                &path,
                format!("is not a known key; expected one of: {}", known.join(", ")),
            );
        }
    }

    pub(super) fn string<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v str> {
        match value.as_str() {
            Some(text) => Some(text),
            None => {
                self.error(path, format!("must be a string, not {}", value.type_str()));
                None
            }
        }
    }

    pub(super) fn name(&mut self, path: &str, value: &Value) -> Option<String> {
        let text = self.string(path, value)?;
        let valid_chars = text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if text.is_empty()
            || text.len() > 63
            || !valid_chars
            || text.starts_with('-')
            || text.ends_with('-')
        {
            self.error(
                path,
                format!("`{text}` must be 1 to 63 characters of a-z, 0-9 and `-`, not starting or ending with `-`"),
            );
            return None;
        }
        Some(text.to_string())
    }

    pub(super) fn version(&mut self, path: &str, value: &Value) -> Option<String> {
        let text = self.string(path, value)?;
        if let Err(message) = check_version(text) {
            self.error(path, message);
            return None;
        }
        Some(text.to_string())
    }

    pub(super) fn table<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v Table> {
        match value.as_table() {
            Some(table) => Some(table),
            None => {
                self.error(path, format!("must be a table, not {}", value.type_str()));
                None
            }
        }
    }

    pub(super) fn count(&mut self, path: &str, value: &Value, min: i64) -> Option<u32> {
        match value.as_integer() {
            Some(number) if number < min => {
                self.error(path, format!("must be at least {min}"));
                None
            }
            Some(number) => match u32::try_from(number) {
                Ok(number) => Some(number),
                Err(_) => {
                    self.error(path, "is too large");
                    None
                }
            },
            None => {
                self.error(
                    path,
                    format!("must be a whole number, not {}", value.type_str()),
                );
                None
            }
        }
    }

    pub(super) fn labels(&mut self, path: &str, value: &Value) -> Labels {
        let mut labels = Labels::new();
        let Some(table) = self.table(path, value) else {
            return labels;
        };
        for (key, value) in table {
            let key_path = join(path, key);
            if let Err(err) = check_label_part(key, true) {
                self.error(&key_path, format!("label key {err}"));
                continue;
            }
            let Some(text) = self.string(&key_path, value) else {
                continue;
            };
            match check_label_part(text, false) {
                Ok(()) => {
                    labels.insert(key.clone(), text.to_string());
                }
                Err(err) => self.error(&key_path, format!("label value {err}")),
            }
        }
        labels
    }

    pub(super) fn strings(
        &mut self,
        path: &str,
        value: &Value,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Vec<String> {
        let Some(array) = value.as_array() else {
            self.error(
                path,
                format!("must be an array of strings, not {}", value.type_str()),
            );
            return Vec::new();
        };
        let mut items = Vec::new();
        for (index, item) in array.iter().enumerate() {
            let item_path = format!("{path}[{index}]");
            let Some(text) = self.string(&item_path, item) else {
                continue;
            };
            match check(text) {
                Ok(()) => items.push(text.to_string()),
                Err(message) => self.error(&item_path, message),
            }
        }
        items
    }

    pub(super) fn timeout(&mut self, path: &str, value: &Value) -> Option<Duration> {
        let text = self.string(path, value)?;
        match crate::time::parse_duration(text) {
            Ok(duration) if duration < Duration::from_secs(1) || duration > MAX_SCRIPT_TIMEOUT => {
                self.error(path, "must be between 1s and 24h");
                None
            }
            Ok(duration) => Some(duration),
            Err(message) => {
                self.error(path, message);
                None
            }
        }
    }
}

pub(super) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Checks a version string (from the manifest or `--version`).
pub fn check_version(text: &str) -> Result<(), String> {
    let valid = !text.is_empty()
        && text.len() <= 128
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | ':'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{text}` must be 1 to 128 characters of letters, digits, `.`, `_`, `-`, `+` and `:`"
        ))
    }
}

/// Checks an environment name given on the command line.
pub fn check_environment(text: &str) -> Result<(), String> {
    let mut checker = Checker::default();
    checker
        .name("environment", &toml::Value::String(text.to_string()))
        .map(|_| ())
        .ok_or_else(|| checker.issues.remove(0).message)
}
