//! The `[resources.NAME]` tables: the database, cache or queue an app
//! needs, run beside it on its hosts in the app's own Docker network and
//! reached there by NAME. Started in `after` order before the app's deploy
//! stage, replaced only when their spec changes, their named volumes kept.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use toml::Value;

use super::container::CONTAINER_KEYS;
use super::{Checker, Container, Health, join};
use crate::labels::Labels;

/// Most resources one app may declare.
pub const MAX_RESOURCES: usize = 16;
/// Snapshots kept per volume when `snapshot_keep` is not given.
pub const DEFAULT_SNAPSHOT_KEEP: u32 = 5;
/// Most snapshots kept per volume.
pub const MAX_SNAPSHOT_KEEP: u32 = 100;

/// A validated `[resources.NAME]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resource {
    /// Image, command, port, host port, env, volumes, limits, pull.
    #[serde(flatten)]
    pub container: Container,
    /// The address `host_port` is published on (default 127.0.0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// The environment's secrets it gets as variables, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// When it counts as ready: `tcp` and `http` reach it on the app's
    /// network at `port`; `run` runs inside its container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Resources that must be up (and healthy) before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// Only these of the deployment's hosts (by name) run it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Only the deployment's hosts with these labels run it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub labels: Labels,
    /// Copy its named volumes to a dated archive before it is replaced.
    #[serde(default)]
    pub snapshot: bool,
    /// Archives kept per volume.
    #[serde(default = "default_keep")]
    pub snapshot_keep: u32,
}

fn default_keep() -> u32 {
    DEFAULT_SNAPSHOT_KEEP
}

impl Resource {
    /// Whether a host with this name and these labels runs it.
    pub fn runs_on(&self, host: &str, host_labels: &Labels) -> bool {
        (self.hosts.is_empty() || self.hosts.iter().any(|name| name == host))
            && crate::labels::matches(&self.labels, host_labels)
    }
}

/// The resources in the order they start: each after those it names in
/// `after`, ties by name. The manifest's check refuses cycles, so every
/// resource appears once.
pub fn start_order(resources: &BTreeMap<String, Resource>) -> Vec<&str> {
    let mut order: Vec<&str> = Vec::with_capacity(resources.len());
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    while order.len() < resources.len() {
        let ready = resources.iter().find(|(name, resource)| {
            !placed.contains(name.as_str())
                && resource.after.iter().all(|before| {
                    placed.contains(before.as_str()) || !resources.contains_key(before)
                })
        });
        let Some((name, _)) = ready else {
            // A cycle (refused by the check): the rest by name.
            order.extend(
                resources
                    .keys()
                    .map(String::as_str)
                    .filter(|name| !placed.contains(name)),
            );
            break;
        };
        placed.insert(name);
        order.push(name);
    }
    order
}

impl Checker {
    pub(super) fn resources(&mut self, value: &Value) -> BTreeMap<String, Resource> {
        let mut resources = BTreeMap::new();
        let Some(table) = self.table("resources", value) else {
            return resources;
        };
        if table.len() > MAX_RESOURCES {
            self.error(
                "resources",
                format!(
                    "declares {} resources; at most {MAX_RESOURCES}",
                    table.len()
                ),
            );
            return resources;
        }
        for (name, value) in table {
            let path = join("resources", name);
            if let Err(message) = check_resource_name(name) {
                self.error(&path, message);
                continue;
            }
            if let Some(resource) = self.resource(&path, value) {
                resources.insert(name.clone(), resource);
            }
        }
        for (name, resource) in &resources {
            for before in &resource.after {
                if before == name {
                    self.error(
                        &(join("resources", name) + ".after"),
                        "names the resource itself",
                    );
                } else if !resources.contains_key(before) && !table.contains_key(before) {
                    self.error(
                        &(join("resources", name) + ".after"),
                        format!("names `{before}`, which is not a resource here; declare [resources.{before}] or remove it"),
                    );
                }
            }
        }
        if let Some(cycle) = find_cycle(&resources) {
            self.error(
                "resources",
                format!(
                    "`after` goes round in a circle ({}); one of them must start first",
                    cycle.join(" -> ")
                ),
            );
        }
        resources
    }

    fn resource(&mut self, path: &str, value: &Value) -> Option<Resource> {
        let table = self.table(path, value)?;
        let mut known = CONTAINER_KEYS.to_vec();
        known.extend([
            "host_ip",
            "secrets",
            "health",
            "after",
            "hosts",
            "labels",
            "snapshot",
            "snapshot_keep",
        ]);
        self.unknown_keys(path, table, &known);
        let container = self.container_fields(path, table, false);
        let mut resource = Resource {
            health: None,
            snapshot_keep: DEFAULT_SNAPSHOT_KEEP,
            ..Default::default()
        };
        if let Some(value) = table.get("host_ip") {
            let at = join(path, "host_ip");
            if let Some(text) = self.string(&at, value) {
                match text.parse::<std::net::IpAddr>() {
                    Ok(_) if container.host_port.is_some() => resource.host_ip = Some(text.into()),
                    Ok(_) => self.error(&at, "needs host_port, the host port to publish on it"),
                    Err(_) => self.error(
                        &at,
                        format!(
                            "`{text}` is not an IP address; use 127.0.0.1 (the default) or 0.0.0.0"
                        ),
                    ),
                }
            }
        }
        if let Some(value) = table.get("secrets") {
            resource.secrets = self.strings(&join(path, "secrets"), value, |name| {
                crate::variables::check_name(name).map_err(|err| err.to_string())
            });
        }
        if let Some(value) = table.get("health") {
            resource.health =
                self.health_at(&join(path, "health"), value, container.port.is_some());
        }
        if let Some(value) = table.get("after") {
            resource.after = self.strings(&join(path, "after"), value, check_resource_name);
        }
        if let Some(value) = table.get("hosts") {
            resource.hosts = self.strings(&join(path, "hosts"), value, |host| {
                crate::labels::check_label_part(host, false)
                    .map_err(|err| format!("host name {err}"))
            });
        }
        if let Some(value) = table.get("labels") {
            resource.labels = self.labels(&join(path, "labels"), value);
        }
        if let Some(value) = table.get("snapshot") {
            match value.as_bool() {
                Some(flag) => resource.snapshot = flag,
                None => self.error(
                    &join(path, "snapshot"),
                    format!("must be true or false, not {}", value.type_str()),
                ),
            }
        }
        if let Some(value) = table.get("snapshot_keep") {
            let at = join(path, "snapshot_keep");
            match self.count(&at, value, 1) {
                Some(keep) if keep <= MAX_SNAPSHOT_KEEP => resource.snapshot_keep = keep,
                Some(_) => self.error(&at, format!("must be at most {MAX_SNAPSHOT_KEEP}")),
                None => {}
            }
        }
        resource.container = container;
        Some(resource)
    }
}

/// A resource's name: what the app reaches it by on its network, and part
/// of its container's and volumes' names.
pub fn check_resource_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` must be 1 to 32 characters of a-z, 0-9 and `-`, starting with a letter and not ending with `-` (the app reaches it by this name)"
        ))
    }
}

fn find_cycle(resources: &BTreeMap<String, Resource>) -> Option<Vec<String>> {
    fn visit<'a>(
        name: &'a str,
        resources: &'a BTreeMap<String, Resource>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|seen| *seen == name) {
            let mut cycle: Vec<String> = path[at..].iter().map(|name| name.to_string()).collect();
            cycle.push(name.to_string());
            return Some(cycle);
        }
        if done.contains(name) {
            return None;
        }
        path.push(name);
        for before in resources
            .get(name)
            .map(|r| r.after.as_slice())
            .unwrap_or_default()
        {
            if before != name
                && let Some(cycle) = visit(before, resources, path, done)
            {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(name);
        None
    }
    let mut done = BTreeSet::new();
    resources
        .keys()
        .find_map(|name| visit(name, resources, &mut Vec::new(), &mut done))
}
