//! The credential bundle the CLI reads (one TOML file holding the controller
//! address, the CA certificate, a client certificate and its key; mode 0600)
//! and the join token format.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A CLI credential bundle.
#[derive(Clone, Serialize, Deserialize)]
pub struct Bundle {
    /// `https://HOST:PORT` of the controller.
    pub controller: String,
    /// Who this credential belongs to (for display only; the controller
    /// decides from its own records).
    pub principal: String,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("controller", &self.controller)
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl Bundle {
    /// Reads a bundle; names the file and the problem on failure.
    pub fn load(path: &Path) -> Result<Bundle, String> {
        let text = fs::read_to_string(path)
            .map_err(|err| format!("cannot read credential bundle {}: {err}", path.display()))?;
        toml::from_str(&text).map_err(|err| {
            format!(
                "credential bundle {} is not valid: {}",
                path.display(),
                err.message()
            )
        })
    }

    /// The bundle as the TOML text of its file.
    pub fn to_text(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|err| format!("encode credential bundle: {err}"))
    }

    /// Writes the bundle with mode 0600, replacing any file at `path`.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        write_secret(path, self.to_text()?.as_bytes())
    }
}

/// Writes a file only its owner can read (mode 0600), atomically: a
/// temporary file in the same directory, fsynced, then renamed.
pub fn write_secret(path: &Path, contents: &[u8]) -> Result<(), String> {
    write_file(path, contents, 0o600)
}

/// Writes a file with `mode` atomically (temporary file, fsync, rename).
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), String> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent)
        .map_err(|err| format!("create directory {}: {err}", parent.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temp)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        fs::File::open(parent)?.sync_all()
    })();
    result.map_err(|err| {
        let _ = fs::remove_file(&temp);
        format!("write {}: {err}", path.display())
    })
}

/// The controllers' addresses in a `--controller a,b,c` list (the
/// agent's, the CLI's and the bundle's), trimmed, empty ones dropped.
pub fn controller_addresses(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|address| !address.is_empty())
        .collect()
}

/// Where the CLI looks for its bundle when neither `--config` nor
/// `$BERTH_CONFIG` names one.
pub fn default_bundle_path(home: Option<&Path>) -> Option<PathBuf> {
    home.map(|home| home.join(".config/berth/config"))
}

/// The prefix that marks a berth join token (format version 1).
const TOKEN_PREFIX: &str = "bt1";

/// Controller addresses a join token carries at most.
const MAX_TOKEN_CONTROLLERS: usize = 16;

/// A join token: public id, secret, the CA pin, and the controllers to
/// join (what the CLI that made it was using; none in a token made
/// otherwise, when `berth-agent join --controller` must name them).
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    pub id: String,
    pub secret: String,
    /// Hex SHA-256 of the CA's SubjectPublicKeyInfo.
    pub ca_pin: String,
    /// `https://HOST:PORT` addresses, in the order to try them.
    pub controllers: Vec<String>,
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl JoinToken {
    /// The text form `bt1.<id>.<secret>.<pin>`, then `.<controllers>`
    /// (the comma-separated list, base64url) when it carries addresses.
    pub fn encode(&self) -> String {
        use base64::Engine;
        let mut text = format!("{TOKEN_PREFIX}.{}.{}.{}", self.id, self.secret, self.ca_pin);
        if !self.controllers.is_empty() {
            text.push('.');
            text.push_str(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(self.controllers.join(",")),
            );
        }
        text
    }

    /// The controllers a token's last part names: at most
    /// [`MAX_TOKEN_CONTROLLERS`] `https://` addresses.
    fn controllers(part: &str) -> Option<Vec<String>> {
        use base64::Engine;
        if part.len() > 4096 {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .ok()?;
        let list = String::from_utf8(bytes).ok()?;
        let addresses: Vec<String> = controller_addresses(&list)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let valid = |address: &String| {
            address.strip_prefix("https://").is_some_and(|rest| {
                !rest.is_empty()
                    && rest.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '/')
                    })
            })
        };
        (!addresses.is_empty()
            && addresses.len() <= MAX_TOKEN_CONTROLLERS
            && addresses.iter().all(valid))
        .then_some(addresses)
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<JoinToken, String> {
        let parts: Vec<&str> = text.trim().split('.').collect();
        let malformed = || {
            "the join token is malformed; copy it again from `berth token create` (it looks like bt1.<id>.<secret>.<pin>, then .<controllers>)".to_string()
        };
        let (prefix, id, secret, pin, controllers) = match parts.as_slice() {
            [prefix, id, secret, pin] => (prefix, id, secret, pin, Vec::new()),
            [prefix, id, secret, pin, controllers] => (
                prefix,
                id,
                secret,
                pin,
                JoinToken::controllers(controllers).ok_or_else(malformed)?,
            ),
            _ => return Err(malformed()),
        };
        let hex_pin = pin.len() == 64 && pin.chars().all(|c| c.is_ascii_hexdigit());
        let id_ok =
            !id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_alphanumeric());
        let secret_ok = secret.len() >= 32
            && secret.len() <= 128
            && secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if *prefix != TOKEN_PREFIX || !hex_pin || !id_ok || !secret_ok {
            return Err(malformed());
        }
        Ok(JoinToken {
            id: (*id).to_string(),
            secret: (*secret).to_string(),
            ca_pin: pin.to_ascii_lowercase(),
            controllers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips() {
        let mut token = JoinToken {
            id: "abc123".into(),
            secret: "s".repeat(43),
            ca_pin: "ab".repeat(32),
            controllers: Vec::new(),
        };
        assert_eq!(token.encode().split('.').count(), 4, "as before");
        assert_eq!(JoinToken::parse(&token.encode()), Ok(token.clone()));
        token.controllers = vec!["https://a.example:7443".into(), "https://[::1]:7443".into()];
        let text = token.encode();
        assert_eq!(text.split('.').count(), 5);
        assert_eq!(JoinToken::parse(&text), Ok(token));
        assert!(JoinToken::parse("bt1.abc.short.pin").is_err());
        assert!(JoinToken::parse("garbage").is_err());
    }

    #[test]
    fn a_token_naming_other_than_controller_addresses_is_refused() {
        use base64::Engine;
        let base = format!("bt1.abc123.{}.{}", "s".repeat(43), "ab".repeat(32));
        for list in [
            "http://plain:80",
            "https://a:1,file:///etc/passwd",
            "https://a b",
            "",
            &vec!["https://a:1"; 17].join(","),
        ] {
            let part = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(list);
            assert!(
                JoinToken::parse(&format!("{base}.{part}")).is_err(),
                "{list}"
            );
        }
        assert!(JoinToken::parse(&format!("{base}.!!!")).is_err());
        assert!(JoinToken::parse(&format!("{base}.{}", "A".repeat(5000))).is_err());
    }

    #[test]
    fn secrets_are_written_0600() {
        let dir = std::env::temp_dir().join(format!("berth-cred-test-{}", std::process::id()));
        let path = dir.join("admin.conf");
        write_secret(&path, b"secret").expect("write");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let _ = fs::remove_dir_all(&dir);
    }
}
