//! The `TaskSpec` an agent gets for a task, built from the deployment
//! record (and registry credentials only for images from that registry).

use berth_proto::v1::{ContainerSpec, TaskSpec, task_spec};
use berth_shared::id::TaskId;
use berth_shared::record::{Deployment, TaskKind};

/// The tag a Dockerfile build gives its image: `berth/APP:VERSION`, with
/// characters Docker refuses in a tag replaced by `-`.
pub fn image_tag(deployment: &Deployment) -> String {
    let version: String = deployment
        .version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect();
    let version = version.trim_start_matches(['.', '-']);
    let version = if version.is_empty() {
        "latest"
    } else {
        version
    };
    deployment
        .built
        .as_ref()
        .and_then(|built| built.image.clone())
        .unwrap_or_else(|| format!("berth/{}:{version}", deployment.app))
}

pub(super) fn build_spec(
    build: &berth_shared::manifest::Build,
    deployment: &Deployment,
) -> berth_proto::v1::BuildSpec {
    use berth_shared::manifest::BuildKind;
    match &build.kind {
        BuildKind::Dockerfile {
            dockerfile,
            target,
            args,
        } => berth_proto::v1::BuildSpec {
            dockerfile: dockerfile.clone(),
            target: target.clone().unwrap_or_default(),
            args: args.clone().into_iter().collect(),
            image_tag: image_tag(deployment),
            ..Default::default()
        },
        BuildKind::Artifact { run, artifact } => berth_proto::v1::BuildSpec {
            run: run.clone(),
            artifact: artifact.clone(),
            ..Default::default()
        },
    }
}

/// The secrets the deployment's snapshot names, at their versions, with
/// the file each goes to; the values are filled in just before the send
/// ([`Dispatcher::with_secrets`](super::Dispatcher)).
fn secret_uses(deployment: &Deployment) -> Vec<berth_proto::v1::SecretValue> {
    deployment
        .variables
        .iter()
        .filter_map(berth_shared::record::Variable::secret_ref)
        .map(|secret| berth_proto::v1::SecretValue {
            file: deployment
                .manifest
                .secrets
                .get(&secret.name)
                .and_then(|used| used.file.clone())
                .unwrap_or_default(),
            name: secret.name,
            scope: secret.scope.to_string(),
            version: secret.version,
            value: String::new(),
        })
        .collect()
}

/// The assignment an agent receives for a task. A `restore` task runs the
/// stages of the deployment it puts back (`restore_to`), while its events
/// stay with the deployment that failed.
pub fn spec_for(deployment: &Deployment, task_id: TaskId) -> TaskSpec {
    if let Some(source) = &deployment.restore_to
        && deployment
            .tasks
            .iter()
            .any(|task| task.id == task_id && task.kind == TaskKind::Restore)
    {
        let mut previous = deployment.clone();
        previous.id = source.deployment_id;
        previous.version = source.version.clone();
        previous.manifest = source.manifest.clone();
        previous.bundle_digest = source.bundle_digest.clone();
        previous.bundle_size = source.bundle_size;
        previous.image_archive_digest = source.image_archive_digest.clone();
        previous.image_archive_size = source.image_archive_size;
        previous.built = source.built.clone();
        previous.variables = source.variables.clone();
        previous.restore_to = None;
        let mut spec = spec_for(&previous, task_id);
        spec.deployment_id = deployment.id.to_string();
        spec.restore_of = source.deployment_id.to_string();
        return spec;
    }
    let task = deployment
        .tasks
        .iter()
        .find(|task| task.id == task_id)
        .expect("caller passes a task of this deployment");
    let (kind, stage, script) = match task.kind {
        TaskKind::Deploy | TaskKind::Restore => (
            task_spec::Kind::Deploy,
            "setup",
            deployment.manifest.setup.as_ref(),
        ),
        TaskKind::Stop => (
            task_spec::Kind::Stop,
            "stop",
            deployment.manifest.stop.as_ref(),
        ),
        TaskKind::Delete => (task_spec::Kind::Delete, "delete", None),
        TaskKind::Build => (task_spec::Kind::Build, "build", None),
    };
    let env = deployment.env();
    let secrets = secret_uses(deployment);
    let resources = match task.kind {
        TaskKind::Deploy | TaskKind::Restore => {
            super::resources::specs(deployment, &task.host, &secrets)
        }
        TaskKind::Stop | TaskKind::Delete if task.with_resources => {
            super::resources::specs(deployment, &task.host, &secrets)
        }
        _ => Vec::new(),
    };
    let build = deployment.manifest.build.as_ref();
    let built_image = build
        .filter(|build| build.makes_image())
        .map(|_| image_tag(deployment));
    TaskSpec {
        task_id: task.id.to_string(),
        deployment_id: deployment.id.to_string(),
        generation: task.generation,
        app: deployment.app.clone(),
        environment: deployment.environment.clone(),
        version: deployment.version.clone(),
        bundle_digest: deployment.bundle_digest.clone(),
        bundle_size: deployment.bundle_size,
        kind: kind as i32,
        commands: script.map(|script| script.run.clone()).unwrap_or_default(),
        timeout_ms: match (task.kind, build) {
            (TaskKind::Build, Some(build)) => {
                u64::try_from(build.timeout.as_millis()).unwrap_or(u64::MAX)
            }
            _ => script.map_or(300_000, |script| {
                u64::try_from(script.timeout.as_millis()).unwrap_or(u64::MAX)
            }),
        },
        build: build
            .filter(|_| task.kind == TaskKind::Build)
            .map(|build| build_spec(build, deployment)),
        artifact: deployment
            .built
            .as_ref()
            .filter(|_| matches!(task.kind, TaskKind::Deploy | TaskKind::Restore))
            .and_then(|built| {
                built
                    .artifact
                    .as_ref()
                    .map(|name| berth_proto::v1::ArtifactRef {
                        digest: built.digest.clone(),
                        size: built.size,
                        name: name.clone(),
                    })
            }),
        stage: stage.to_string(),
        restore_of: String::new(),
        env: env.clone().into_iter().collect(),
        secrets,
        resources,
        with_resources: task.with_resources,
        purge_volumes: task.purge_volumes,
        host: task.host.clone(),
        container: deployment
            .manifest
            .container
            .as_ref()
            .map(|container| ContainerSpec {
                image: built_image
                    .clone()
                    .unwrap_or_else(|| container.image.clone()),
                port: container.port.map_or(0, u32::from),
                host_port: container.host_port.map_or(0, u32::from),
                env: env.clone().into_iter().collect(),
                volumes: container.volumes.clone(),
                command: container.command.clone(),
                memory_bytes: container.memory_bytes.unwrap_or(0),
                nano_cpus: container.nano_cpus.unwrap_or(0),
                image_archive_digest: deployment.image_archive_digest.clone().unwrap_or_default(),
                image_archive_size: deployment.image_archive_size,
                stop_timeout_secs: container.stop_timeout_secs.unwrap_or(0),
                pull: container.pull_policy().as_str().to_string(),
                update: container.update_order().as_str().to_string(),
                proxy: deployment
                    .manifest
                    .proxy
                    .as_ref()
                    .map(|proxy| berth_proto::v1::ProxySpec {
                        domain: proxy.domain.clone(),
                        tls: proxy.tls.clone(),
                    }),
                health: deployment
                    .manifest
                    .health
                    .as_ref()
                    .map(super::resources::health_spec),
                // Filled in by `Dispatcher::send_assign`, the only way out.
                registry_auth: None,
            }),
    }
}

#[cfg(test)]
mod credential_tests {
    use std::sync::Arc;
    use std::time::Duration;

    use berth_shared::record::Timestamp;

    use super::*;
    use crate::dispatcher::Dispatcher;
    use crate::hub::Hub;
    use crate::registry::Registry;
    use crate::store::Store;

    #[test]
    fn registry_credentials_go_only_with_images_from_that_registry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let key = Arc::new(crate::crypto::SecretKey::generate());
        let place = crate::crypto::Place::Registry {
            server: "registry.example.com",
        };
        store
            .put_registry(&crate::store::RegistryRecord {
                server: "registry.example.com".into(),
                username: "deployer".into(),
                sealed_password: Some(key.seal(&place, b"s3cret")),
                clear_password: None,
                created_at: Timestamp::now(),
                created_by: "admin".into(),
            })
            .expect("put");
        store.use_secret_key(key);
        let dispatcher = Dispatcher::new(
            store,
            Arc::new(Registry::default()),
            Hub::default(),
            Duration::from_secs(60),
        )
        .expect("dispatcher");
        let spec = |image: &str| TaskSpec {
            container: Some(ContainerSpec {
                image: image.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let private = dispatcher.with_credentials(spec("registry.example.com/team/app:1"));
        let auth = private
            .container
            .and_then(|container| container.registry_auth)
            .expect("credentials for its registry");
        assert_eq!(
            (
                auth.server.as_str(),
                auth.username.as_str(),
                auth.password.as_str()
            ),
            ("registry.example.com", "deployer", "s3cret")
        );
        let public = dispatcher.with_credentials(spec("hello:1"));
        assert!(
            public
                .container
                .and_then(|container| container.registry_auth)
                .is_none(),
            "no credentials for other registries"
        );
        assert!(
            dispatcher
                .with_credentials(TaskSpec::default())
                .container
                .is_none()
        );
    }
}
