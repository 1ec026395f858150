//! The resources an agent runs beside the app (`[resources.NAME]`): each
//! as a `ResourceSpec` in start order, only for the hosts it names, with
//! the fingerprint that tells the agent whether its spec changed.

use berth_proto::v1::{ContainerSpec, HealthSpec, ResourceSpec, SecretValue};
use berth_shared::labels::Labels;
use berth_shared::manifest::{Health, Probe, Resource, start_order};
use berth_shared::record::Deployment;
use sha2::{Digest, Sha256};

/// A health section as the agent gets it.
pub(super) fn health_spec(health: &Health) -> HealthSpec {
    let ms =
        |duration: std::time::Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    let (http_path, tcp, run) = match &health.probe {
        Probe::Http(path) => (path.clone(), false, Vec::new()),
        Probe::Tcp => (String::new(), true, Vec::new()),
        Probe::Run(commands) => (String::new(), false, commands.clone()),
    };
    HealthSpec {
        http_path,
        tcp,
        run,
        interval_ms: ms(health.interval),
        timeout_ms: ms(health.timeout),
        start_period_ms: ms(health.start_period),
    }
}

/// The deployment's resources that run on `host`, in start order (the
/// `labels` filter is applied at the send, where the host's labels are
/// known: [`for_labels`]).
pub(super) fn specs(
    deployment: &Deployment,
    host: &str,
    secrets: &[SecretValue],
) -> Vec<ResourceSpec> {
    let resources = &deployment.manifest.resources;
    start_order(resources)
        .into_iter()
        .filter_map(|name| resources.get(name).map(|resource| (name, resource)))
        .filter(|(_, resource)| {
            resource.hosts.is_empty() || resource.hosts.iter().any(|name| name == host)
        })
        .map(|(name, resource)| spec(name, resource, secrets))
        .collect()
}

fn spec(name: &str, resource: &Resource, secrets: &[SecretValue]) -> ResourceSpec {
    let container = &resource.container;
    let container = ContainerSpec {
        image: container.image.clone(),
        port: container.port.map_or(0, u32::from),
        host_port: container.host_port.map_or(0, u32::from),
        env: container.env.clone().into_iter().collect(),
        volumes: container.volumes.clone(),
        command: container.command.clone(),
        memory_bytes: container.memory_bytes.unwrap_or(0),
        nano_cpus: container.nano_cpus.unwrap_or(0),
        stop_timeout_secs: container.stop_timeout_secs.unwrap_or(0),
        pull: container.pull_policy().as_str().to_string(),
        update: "stop-first".to_string(),
        health: resource.health.as_ref().map(health_spec),
        ..Default::default()
    };
    let mut spec = ResourceSpec {
        name: name.to_string(),
        container: Some(container),
        host_ip: resource.host_ip.clone().unwrap_or_default(),
        snapshot: resource.snapshot,
        snapshot_keep: resource.snapshot_keep,
        fingerprint: String::new(),
        secrets: resource.secrets.clone(),
        labels: resource.labels.clone().into_iter().collect(),
    };
    spec.fingerprint = fingerprint(&spec, secrets);
    spec
}

/// What makes the resource's container, hashed: a change of any of it
/// replaces the container; a change of its health check, snapshot
/// settings or registry credentials does not. Secrets count by scope and
/// version, never by value.
fn fingerprint(spec: &ResourceSpec, secrets: &[SecretValue]) -> String {
    let container = spec.container.clone().unwrap_or_default();
    let mut env: Vec<(&String, &String)> = container.env.iter().collect();
    env.sort();
    let mut used: Vec<String> = spec
        .secrets
        .iter()
        .map(|name| {
            let version = secrets
                .iter()
                .find(|secret| &secret.name == name)
                .map_or_else(
                    || "missing".to_string(),
                    |secret| format!("{}@{}", secret.scope, secret.version),
                );
            format!("{name}={version}")
        })
        .collect();
    used.sort();
    let text = serde_json::json!({
        "image": container.image,
        "command": container.command,
        "port": container.port,
        "host_port": container.host_port,
        "host_ip": spec.host_ip,
        "env": env,
        "secrets": used,
        "volumes": container.volumes,
        "memory": container.memory_bytes,
        "cpus": container.nano_cpus,
        "stop_timeout": container.stop_timeout_secs,
    })
    .to_string();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Leaves out the resources whose `labels` the host's labels do not match.
pub(super) fn for_labels(resources: &mut Vec<ResourceSpec>, host_labels: &Labels) {
    resources.retain(|resource| {
        let wanted: Labels = resource
            .labels
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        berth_shared::labels::matches(&wanted, host_labels)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> berth_shared::manifest::Manifest {
        berth_shared::manifest::Manifest::parse(text).expect("valid manifest")
    }

    const BASE: &str =
        "app = \"web\"\n[target]\nhosts = [\"a\", \"b\"]\n[container]\nimage = \"web:1\"\n";

    fn deployment(text: &str) -> Deployment {
        let mut deployment = crate::testing::deployment(&["a", "b"], 0);
        deployment.manifest = manifest(text);
        deployment
    }

    #[test]
    fn resources_come_in_start_order_and_only_for_their_hosts() {
        let text = format!(
            "{BASE}[resources.cache]\nimage = \"kv:1\"\nafter = [\"db\"]\n[resources.db]\nimage = \"pg:16\"\n[resources.metrics]\nimage = \"m:1\"\nhosts = [\"b\"]\n"
        );
        let deployment = deployment(&text);
        let names = |host: &str| -> Vec<String> {
            specs(&deployment, host, &[])
                .into_iter()
                .map(|spec| spec.name)
                .collect()
        };
        assert_eq!(names("a"), ["db", "cache"]);
        assert_eq!(names("b"), ["db", "cache", "metrics"]);
    }

    #[test]
    fn the_fingerprint_changes_with_the_container_and_secret_versions_not_health() {
        let one = deployment(&format!(
            "{BASE}[resources.db]\nimage = \"pg:16\"\nsecrets = [\"PW\"]\n"
        ));
        let secret = |version| SecretValue {
            name: "PW".into(),
            scope: "web/default".into(),
            version,
            value: "hunter2".into(),
            file: String::new(),
        };
        let first = specs(&one, "a", &[secret(1)]).remove(0).fingerprint;
        assert_eq!(
            first,
            specs(
                &one,
                "a",
                &[SecretValue {
                    value: "other".into(),
                    ..secret(1)
                }]
            )
            .remove(0)
            .fingerprint,
            "a value is never part of it"
        );
        assert_ne!(first, specs(&one, "a", &[secret(2)]).remove(0).fingerprint);
        let checked = deployment(&format!(
            "{BASE}[resources.db]\nimage = \"pg:16\"\nsecrets = [\"PW\"]\nsnapshot = true\n[resources.db.health]\nrun = [\"true\"]\n"
        ));
        assert_eq!(
            first,
            specs(&checked, "a", &[secret(1)]).remove(0).fingerprint
        );
        let newer = deployment(&format!(
            "{BASE}[resources.db]\nimage = \"pg:17\"\nsecrets = [\"PW\"]\n"
        ));
        assert_ne!(
            first,
            specs(&newer, "a", &[secret(1)]).remove(0).fingerprint
        );
    }

    #[test]
    fn labels_leave_out_hosts_that_do_not_match() {
        let deployment = deployment(&format!(
            "{BASE}[resources.db]\nimage = \"pg:16\"\nlabels = {{ disk = \"ssd\" }}\n"
        ));
        let mut resources = specs(&deployment, "a", &[]);
        for_labels(
            &mut resources,
            &Labels::from([("disk".to_string(), "hdd".to_string())]),
        );
        assert!(resources.is_empty());
        let mut resources = specs(&deployment, "a", &[]);
        for_labels(
            &mut resources,
            &Labels::from([("disk".to_string(), "ssd".to_string())]),
        );
        assert_eq!(resources.len(), 1);
    }
}
