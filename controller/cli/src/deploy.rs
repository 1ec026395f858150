//! `berth deploy`: validate locally, upload the bundle, create the
//! deployment, then follow it live with per-host progress and the scripts'
//! output.

use std::path::{Path, PathBuf};

use berth_proto::v1::CreateDeploymentRequest;
use berth_shared::exit;
use berth_shared::manifest::Manifest;
use berth_shared::record::Deployment;
use berth_shared::state::DeploymentStatus;
use clap::Args;

use super::live::{LiveOptions, follow_with};
use super::output::{emit, progress};
use super::wire;
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
    /// Hide the scripts' output in the live view (berth's own lines and
    /// the transitions stay); `berth logs` has it.
    #[arg(short, long)]
    pub quiet: bool,
    /// When agents the target selects are offline, wait up to DURATION
    /// (e.g. 30s, 5m; at most 1h) for them to connect instead of refusing.
    #[arg(long, value_name = "DURATION", value_parser = parse_wait)]
    pub wait_for_agents: Option<std::time::Duration>,
    #[command(flatten)]
    pub provenance: super::provenance::ProvenanceArgs,
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
    let (message, source_ref, commit_sha, build_url) =
        super::provenance::resolve(&args.provenance, |name| std::env::var(name).ok());
    let manifest_dir = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let commit_time_ms = super::provenance::commit_time(
        &args.provenance,
        |name| std::env::var(name).ok(),
        commit_sha.as_deref(),
        |sha| super::provenance::git_commit_time(manifest_dir, sha),
    );
    let request = CreateDeploymentRequest {
        message,
        source_ref,
        commit_sha,
        commit_time_ms,
        build_url,
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
    let (reply, existing) = create(session, request, args.wait_for_agents).await?;
    let deployment: Deployment = wire::deployment(reply)?;
    let hosts: Vec<&str> = deployment
        .tasks
        .iter()
        .map(|task| task.host.as_str())
        .collect();
    let created = if existing {
        "already created (same --idempotency-key)"
    } else {
        "created"
    };
    progress(
        format,
        &format!(
            "deployment {} {created}: {} {} in {} on {}",
            deployment.id,
            manifest.app,
            deployment.version,
            deployment.environment,
            hosts.join(", ")
        ),
    );
    let options = LiveOptions {
        quiet: args.quiet,
        from_start: false,
    };
    finish_with(session, deployment, args.detach, options).await
}

/// Creates the deployment. With `--wait-for-agents`, a refusal naming
/// offline target agents is followed by a second request that waits for
/// them on the controller, after saying whom it waits for.
async fn create(
    session: &mut Session,
    mut request: CreateDeploymentRequest,
    wait: Option<std::time::Duration>,
) -> Result<(berth_proto::v1::DeploymentReply, bool), Failure> {
    let refused = match session.client.create_deployment(request.clone()).await {
        Ok(reply) => return Ok(existing(reply)),
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
    Ok(existing(session.client.create_deployment(request).await?))
}

/// The reply, and whether it is the deployment an earlier request with the
/// same idempotency key made.
fn existing(
    reply: tonic::Response<berth_proto::v1::DeploymentReply>,
) -> (berth_proto::v1::DeploymentReply, bool) {
    let existing = reply
        .metadata()
        .contains_key(berth_proto::EXISTING_DEPLOYMENT_METADATA);
    (reply.into_inner(), existing)
}

/// Follows a new deployment (unless `detach`) and prints how it ended;
/// exit 0 only when it is deployed (or, detached, was created). One that
/// waits for an approval is not followed: it says so and exits 6
/// (`PENDING_APPROVAL`; 0 detached).
pub async fn finish(session: &mut Session, deployment: Deployment, detach: bool) -> Outcome {
    finish_with(session, deployment, detach, LiveOptions::default()).await
}

/// [`finish`] with live view options.
pub async fn finish_with(
    session: &mut Session,
    deployment: Deployment,
    detach: bool,
    options: LiveOptions,
) -> Outcome {
    let format = session.format;
    if let Some(code) = super::approvals::report_waiting(format, &deployment, detach) {
        return Ok(code);
    }
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
            format!("follow it with: berth watch {}", deployment.id)
        });
        return Ok(exit::OK);
    }
    let last = follow_with(session, &deployment, options).await?;
    emit(format, &last, || summary(&last));
    Ok(if last.status == DeploymentStatus::Deployed {
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
