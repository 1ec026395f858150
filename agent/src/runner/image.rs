//! Makes sure a container's image is on the host: already there, loaded
//! from the deployment's image archive, or pulled from its registry.

use std::sync::Arc;

use berth_proto::v1::ContainerSpec;

use berth_shared::id::TaskId;
use tracing::warn;

use super::{Emitter, Failure, fetch_blob};
use crate::Agent;
use crate::stage::docker;

/// Makes sure the image is on the host: already there, else loaded from the
/// deployment's image archive, else pulled from its registry.
pub(super) async fn ensure_image(
    agent: &Arc<Agent>,
    docker: &bollard::Docker,
    container: &ContainerSpec,
    emitter: &Emitter<'_>,
) -> Result<(), Failure> {
    let host = &agent.identity.name;
    let image = &container.image;
    let present = docker::image_id(docker, image).await;
    if !container.image_archive_digest.is_empty() {
        return ensure_from_archive(agent, docker, container, present, emitter).await;
    }
    match container.pull.as_str() {
        "always" => {
            emitter.system(format!("pulling image {image} (pull = \"always\")"));
            return docker::pull(docker, image, container.registry_auth.as_ref(), emitter)
                .await
                .map_err(|err| {
                    let instead = if present.is_some() {
                        format!("; host {host} has an image under that name: set pull = \"missing\" in [container] to use it")
                    } else {
                        String::new()
                    };
                    Failure::failed(format!(
                        "image {image} could not be pulled on host {host} (pull = \"always\", the default for a `latest` or missing tag): {err}{instead}"
                    ))
                });
        }
        "never" if present.is_none() => {
            return Err(Failure::failed(format!(
                "image {image} is not on host {host}, and pull = \"never\"; load it there, deploy with --image-archive, or allow a pull"
            )));
        }
        _ if present.is_some() => {
            emitter.system(format!("image {image} is already on this host"));
            return Ok(());
        }
        _ => {}
    }
    emitter.system(format!("pulling image {image}"));
    docker::pull(docker, image, container.registry_auth.as_ref(), emitter).await.map_err(|err| {
        Failure::failed(format!(
            "image {image} is not on host {host} and could not be pulled: {err}; load it there, push it to a registry the host can reach, or deploy with --image-archive"
        ))
    })?;
    Ok(())
}

/// With an image archive, the archive decides what the tag means: the
/// image `present` under it counts only if this archive loaded it (a
/// rebuild or a new archive under the same tag must replace it); otherwise
/// the archive is fetched and loaded, and what it loaded recorded.
async fn ensure_from_archive(
    agent: &Arc<Agent>,
    docker: &bollard::Docker,
    container: &ContainerSpec,
    present: Option<String>,
    emitter: &Emitter<'_>,
) -> Result<(), Failure> {
    let host = &agent.identity.name;
    let image = &container.image;
    let archive_digest = &container.image_archive_digest;
    let loaded = loaded_from_archive(agent, archive_digest);
    if loaded.is_some() && loaded == present {
        emitter.system(format!(
            "image {image} from archive {archive_digest} is already on this host"
        ));
        return Ok(());
    }
    if present.is_some() {
        emitter.system(format!(
            "image {image} is on this host, but not the one in archive {archive_digest}; loading the archive"
        ));
    }
    emitter.system(format!(
        "loading image {image} from archive {archive_digest} ({} bytes)",
        container.image_archive_size
    ));
    let archive = fetch_blob(agent, archive_digest, container.image_archive_size, emitter)
        .await
        .map_err(|err| {
            Failure::failed(format!(
                "host {host} could not fetch the image archive: {err:#}"
            ))
        })?;
    docker::load_archive(docker, &archive, emitter)
        .await
        .map_err(|err| {
            Failure::failed(format!(
                "host {host} could not load the image archive: {err}"
            ))
        })?;
    let Some(id) = docker::image_id(docker, image).await else {
        return Err(Failure::failed(format!(
            "the image archive loaded on host {host} does not contain {image}; check the tag the archive was saved with"
        )));
    };
    remember_loaded(agent, archive_digest, &id);
    Ok(())
}

/// The id of the image archive `digest` loaded on this host, as recorded
/// when it was loaded.
fn loaded_from_archive(agent: &Agent, digest: &str) -> Option<String> {
    let path = agent.files.loaded_images().join(archive_file_name(digest)?);
    std::fs::read_to_string(path)
        .ok()
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty())
}

/// Records that archive `digest` loaded image `id` (written whole or not
/// at all: a torn record would only cost a second load).
fn remember_loaded(agent: &Agent, digest: &str, id: &str) {
    let Some(name) = archive_file_name(digest) else {
        return;
    };
    let dir = agent.files.loaded_images();
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        // Its own temporary file: two tasks may load the same archive.
        let temporary = dir.join(format!("{name}.{}.tmp", TaskId::new()));
        std::fs::write(&temporary, id)?;
        std::fs::rename(&temporary, dir.join(name))
    });
    if let Err(err) = written {
        warn!(%digest, error = %err, "could not record the image an archive loaded; the next deploy loads it again");
    }
}

/// A file name for an archive digest (`sha256:HEX`), or `None` for
/// anything that is not one.
fn archive_file_name(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .then(|| format!("sha256-{hex}"))
}
