//! `berth deploy` and `berth stop`: validate locally, upload the bundle,
//! create the deployment, then follow it live with per-host progress.

use std::path::{Path, PathBuf};

use berth_proto::v1::{CreateDeploymentRequest, GetDeploymentRequest, StopAppRequest};
use berth_shared::exit;
use berth_shared::manifest::Manifest;
use berth_shared::record::{Deployment, TaskKind};
use berth_shared::state::{DeploymentStatus, TaskStatus};
use clap::Args;

use super::live::follow;
use super::output::{emit, progress};
use super::{Failure, Outcome, Session};

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// The manifest; default: berth.toml in --bundle, else ./berth.toml.
    #[arg(short = 'f', long = "file")]
    pub manifest: Option<PathBuf>,
    /// Directory to ship to the hosts; default: the manifest's directory.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// A ready-made .tar.gz bundle to upload as is (agents still check it).
    #[arg(long, conflicts_with = "bundle")]
    pub bundle_tar: Option<PathBuf>,
    /// A `docker save` tarball holding the image; uploaded once, loaded by
    /// every host that lacks the image.
    #[arg(long)]
    pub image_archive: Option<PathBuf>,
    /// Version label; default: the manifest's, else the bundle digest.
    #[arg(long)]
    pub version: Option<String>,
    /// Environment; overrides the manifest's.
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// Deploy even if another deployment of this app+env is running.
    #[arg(long, conflicts_with = "queue")]
    pub force: bool,
    /// If another deployment of this app+env is running, wait for it to
    /// end and run after it (instead of being refused).
    #[arg(long)]
    pub queue: bool,
    /// Build again even when an earlier build had the same bundle and
    /// [build] section (its result is reused otherwise).
    #[arg(long)]
    pub rebuild: bool,
    /// Return the existing deployment made with this key.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Print the created deployment and return without following it.
    #[arg(long)]
    pub detach: bool,
    /// When agents the target selects are offline, wait up to DURATION
    /// (e.g. 30s, 5m; at most 1h) for them to connect instead of refusing.
    #[arg(long, value_name = "DURATION", value_parser = parse_wait)]
    pub wait_for_agents: Option<std::time::Duration>,
}

/// Parses `--wait-for-agents`: a duration of at most an hour.
fn parse_wait(text: &str) -> Result<std::time::Duration, String> {
    let wait = berth_shared::time::parse_duration(text)?;
    if wait > berth_proto::MAX_WAIT_FOR_AGENTS {
        return Err(format!(
            "`{text}` is too long; wait at most {}",
            berth_shared::time::format_duration(berth_proto::MAX_WAIT_FOR_AGENTS)
        ));
    }
    Ok(wait)
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// The app to stop (with --selector: only this app on those hosts).
    #[arg(required_unless_present = "selector")]
    pub app: Option<String>,
    /// The app's environment.
    #[arg(long = "env", default_value = "default")]
    pub environment: String,
    /// Stop every berth-managed app (or APP) on the hosts whose labels
    /// match, k=v,k2=v2.
    #[arg(long)]
    pub selector: Option<String>,
    /// Return without waiting for the stop commands.
    #[arg(long)]
    pub detach: bool,
}

fn manifest_path(args: &DeployArgs) -> PathBuf {
    match (&args.manifest, &args.bundle) {
        (Some(path), _) => path.clone(),
        (None, Some(bundle)) => bundle.join("berth.toml"),
        (None, None) => PathBuf::from("berth.toml"),
    }
}

/// Reads and validates the manifest locally, listing every error (exit 2).
fn read_manifest(path: &Path) -> Result<(String, Manifest), Failure> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        Failure::usage(format!("cannot read manifest {}: {err}; pass -f FILE or run from the directory holding berth.toml", path.display()))
    })?;
    let manifest = Manifest::parse(&text)
        .map_err(|err| Failure::usage(format!("{}: {err}", path.display())))?;
    Ok((text, manifest))
}

pub async fn deploy(session: &mut Session, args: DeployArgs) -> Outcome {
    let path = manifest_path(&args);
    let (text, manifest) = read_manifest(&path)?;
    let format = session.format;
    let (digest, size) = match &args.bundle_tar {
        Some(archive) => {
            let (digest, size) = super::bundle::hash_file(archive).map_err(|err| {
                Failure::usage(format!(
                    "cannot read bundle archive {}: {err}",
                    archive.display()
                ))
            })?;
            super::bundle::upload(session, archive, &digest, size).await?;
            (digest, size)
        }
        None => {
            let dir = args.bundle.clone().unwrap_or_else(|| {
                path.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
            });
            let packed = super::bundle::pack(&dir)?;
            upload_reporting(
                session,
                "bundle",
                packed.file.path(),
                &packed.digest,
                packed.size,
            )
            .await?;
            (packed.digest, packed.size)
        }
    };
    let archive = match &args.image_archive {
        Some(path) => {
            if manifest.container.is_none() {
                return Err(Failure::usage(
                    "--image-archive needs a [container] section in the manifest",
                ));
            }
            let (digest, size) = super::bundle::hash_file(path).map_err(|err| {
                Failure::usage(format!(
                    "cannot read image archive {}: {err}",
                    path.display()
                ))
            })?;
            upload_reporting(session, "image archive", path, &digest, size).await?;
            Some((digest, size))
        }
        None => None,
    };
    let request = CreateDeploymentRequest {
        manifest_toml: text,
        bundle_digest: digest,
        bundle_size: size,
        version: args.version.clone().unwrap_or_default(),
        environment: args.environment.clone().unwrap_or_default(),
        force: args.force,
        queue: args.queue,
        idempotency_key: args.idempotency_key.clone().unwrap_or_default(),
        image_archive_digest: archive
            .as_ref()
            .map(|(digest, _)| digest.clone())
            .unwrap_or_default(),
        image_archive_size: archive.as_ref().map_or(0, |(_, size)| *size),
        wait_for_agents_ms: 0,
        rebuild: args.rebuild,
    };
    let reply = create(session, request, args.wait_for_agents).await?;
    let deployment: Deployment = parse(&reply.json)?;
    let hosts: Vec<&str> = deployment
        .tasks
        .iter()
        .map(|task| task.host.as_str())
        .collect();
    progress(
        format,
        &format!(
            "deployment {} created: {} {} in {} on {}",
            deployment.id,
            manifest.app,
            deployment.version,
            deployment.environment,
            hosts.join(", ")
        ),
    );
    finish(session, deployment, args.detach).await
}

/// Creates the deployment. With `--wait-for-agents`, a refusal naming
/// offline target agents is followed by a second request that waits for
/// them on the controller, after saying whom it waits for.
async fn create(
    session: &mut Session,
    mut request: CreateDeploymentRequest,
    wait: Option<std::time::Duration>,
) -> Result<berth_proto::v1::DeploymentReply, Failure> {
    let refused = match session.client.create_deployment(request.clone()).await {
        Ok(reply) => return Ok(reply.into_inner()),
        Err(status) => status,
    };
    let offline = refused
        .metadata()
        .get(berth_proto::OFFLINE_AGENTS_METADATA)
        .and_then(|value| value.to_str().ok())
        .map(|names| names.replace(',', ", "));
    let (Some(wait), Some(offline)) = (wait, offline) else {
        return Err(refused.into());
    };
    progress(
        session.format,
        &format!(
            "waiting up to {} for offline agents matching the target: {offline}",
            berth_shared::time::format_duration(wait)
        ),
    );
    request.wait_for_agents_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
    Ok(session
        .client
        .create_deployment(request)
        .await?
        .into_inner())
}

/// Follows a new deployment (unless `detach`) and prints how it ended;
/// exit 0 only when it is deployed (or, detached, was created).
pub async fn finish(session: &mut Session, deployment: Deployment, detach: bool) -> Outcome {
    let format = session.format;
    if deployment.queued {
        progress(
            format,
            &format!(
                "deployment {} waits for the running deployment of {} in {} to end",
                deployment.id, deployment.app, deployment.environment
            ),
        );
    }
    if detach {
        emit(format, &deployment, || {
            format!("follow it with: berth logs {} -f", deployment.id)
        });
        return Ok(exit::OK);
    }
    let last = follow(session, &deployment).await?;
    emit(format, &last, || summary(&last));
    Ok(if last.status == DeploymentStatus::Deployed {
        exit::OK
    } else {
        exit::FAILED
    })
}

pub async fn stop(session: &mut Session, args: StopArgs) -> Outcome {
    if let Some(selector) = &args.selector {
        return stop_selected(session, selector, &args).await;
    }
    let app = args.app.clone().unwrap_or_default();
    let request = StopAppRequest {
        app: app.clone(),
        environment: args.environment.clone(),
    };
    let reply = session.client.stop_app(request).await?.into_inner();
    let deployment: Deployment = parse(&reply.json)?;
    let format = session.format;
    progress(
        format,
        &format!(
            "stopping {app} in {} (deployment {})",
            args.environment, deployment.id
        ),
    );
    let last = if args.detach {
        deployment
    } else {
        follow(session, &deployment).await?
    };
    emit(format, &last, || summary(&last));
    let stopping = last
        .tasks
        .iter()
        .any(|task| task.kind == TaskKind::Stop && !task.status.is_final());
    Ok(
        if last.status == DeploymentStatus::Stopped || (args.detach && stopping) {
            exit::OK
        } else {
            exit::FAILED
        },
    )
}

/// `berth stop --selector`: every matching host's apps, each deployment
/// followed until its hosts are done; exit 0 when every stop succeeded.
async fn stop_selected(session: &mut Session, selector: &str, args: &StopArgs) -> Outcome {
    let request = berth_proto::v1::StopSelectedRequest {
        selector: selector.to_string(),
        app: args.app.clone().unwrap_or_default(),
    };
    let reply = session.client.stop_selected(request).await?.into_inner();
    let started: Vec<Deployment> = parse(&reply.json)?;
    let format = session.format;
    let mut ended = Vec::new();
    for deployment in started {
        progress(
            format,
            &format!(
                "stopping {} in {} on the hosts matching {selector} (deployment {})",
                deployment.app, deployment.environment, deployment.id
            ),
        );
        ended.push(if args.detach {
            deployment
        } else {
            follow(session, &deployment).await?
        });
    }
    let failed: Vec<&Deployment> = ended
        .iter()
        .filter(|deployment| {
            deployment.tasks.iter().any(|task| {
                task.kind == TaskKind::Stop
                    && task.status.is_final()
                    && task.status != TaskStatus::Done
            })
        })
        .collect();
    emit(format, &ended, || {
        ended.iter().map(summary).collect::<Vec<_>>().join("\n")
    });
    Ok(if failed.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    })
}

pub async fn delete(session: &mut Session, id: &str, detach: bool) -> Outcome {
    let reply = session
        .client
        .delete_deployment(GetDeploymentRequest { id: id.to_string() })
        .await?
        .into_inner();
    let deployment: Deployment = parse(&reply.json)?;
    let format = session.format;
    progress(format, &format!("deleting deployment {}", deployment.id));
    let last = if detach {
        deployment
    } else {
        follow(session, &deployment).await?
    };
    emit(format, &last, || summary(&last));
    Ok(if last.status == DeploymentStatus::Deleted || detach {
        exit::OK
    } else {
        exit::FAILED
    })
}

/// Uploads a blob unless the controller has it, and says which happened.
async fn upload_reporting(
    session: &mut Session,
    what: &str,
    path: &Path,
    digest: &str,
    size: u64,
) -> Result<(), Failure> {
    let uploaded = super::bundle::upload(session, path, digest, size).await?;
    let how = if uploaded {
        "uploaded"
    } else {
        "already on the controller"
    };
    progress(
        session.format,
        &format!("{what} {digest} ({}) {how}", super::output::size(size)),
    );
    Ok(())
}

pub fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, Failure> {
    serde_json::from_str(json).map_err(|err| Failure::new(exit::FAILED, format!("the controller sent a reply this CLI cannot read ({err}); are the versions matched?")))
}

pub fn summary(deployment: &Deployment) -> String {
    let mut text = format!("deployment {} is {}", deployment.id, deployment.status);
    if let (Some(step), Some(message)) = (&deployment.error_step, &deployment.error_message) {
        text.push_str(&format!(
            "\n  failed at {step}: {message}\n  see the output with: berth logs {}",
            deployment.id
        ));
    }
    text
}
