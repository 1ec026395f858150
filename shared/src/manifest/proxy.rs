//! The `[proxy]` section: a Caddy route from a domain to the app's
//! container.

use serde::{Deserialize, Serialize};
use toml::Value;

use super::Checker;

/// A validated `[proxy]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Proxy {
    pub domain: String,
    /// `auto` (Caddy's automatic HTTPS), `internal` (Caddy's own CA) or
    /// `off` (plain HTTP).
    pub tls: String,
}

impl Checker {
    pub(super) fn proxy(&mut self, value: &Value, has_port: bool) -> Option<Proxy> {
        let path = "proxy";
        let table = self.table(path, value)?;
        self.unknown_keys(path, table, &["domain", "tls"]);
        if !has_port {
            self.error(path, "routes to the container's port; set container.port");
        }
        let domain = match table.get("domain") {
            None => {
                self.error(
                    "proxy.domain",
                    "is required; name the domain, e.g. domain = \"hello.example.com\"",
                );
                None
            }
            Some(value) => {
                self.string("proxy.domain", value)
                    .and_then(|domain| match check_domain(domain) {
                        Ok(()) => Some(domain.to_ascii_lowercase()),
                        Err(message) => {
                            self.error("proxy.domain", message);
                            None
                        }
                    })
            }
        };
        let tls = match table.get("tls") {
            None => Some("auto".to_string()),
            Some(value) => self.string("proxy.tls", value).and_then(|tls| {
                if ["auto", "internal", "off"].contains(&tls) {
                    Some(tls.to_string())
                } else {
                    self.error(
                        "proxy.tls",
                        format!("`{tls}` must be auto, internal or off"),
                    );
                    None
                }
            }),
        };
        Some(Proxy {
            domain: domain?,
            tls: tls?,
        })
    }
}

fn check_domain(domain: &str) -> Result<(), String> {
    let valid = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{domain}` is not a domain name such as hello.example.com"
        ))
    }
}
