//! Images on the host: found by id, pulled, loaded from an archive, built
//! from a Dockerfile and saved for the controller.

use std::path::Path;

use bollard::Docker;
use bollard::query_parameters::{CreateImageOptions, ImportImageOptions};
use futures_util::StreamExt;

use crate::stage::shell::{LineSink, Stream};

use super::text;

/// The id of the image a name refers to on the host, if it is there.
pub async fn image_id(docker: &Docker, image: &str) -> Option<String> {
    docker
        .inspect_image(image)
        .await
        .ok()
        .and_then(|image| image.id)
}

/// Pulls an image from its registry, reporting progress.
pub async fn pull(
    docker: &Docker,
    image: &str,
    auth: Option<&berth_proto::v1::RegistryAuth>,
    sink: &dyn LineSink,
) -> Result<(), String> {
    let options = CreateImageOptions {
        from_image: Some(image.to_string()),
        ..Default::default()
    };
    let credentials = auth.map(|auth| bollard::auth::DockerCredentials {
        username: Some(auth.username.clone()),
        password: Some(auth.password.clone()),
        serveraddress: Some(auth.server.clone()),
        ..Default::default()
    });
    if let Some(auth) = auth {
        sink.line(
            Stream::System,
            format!(
                "pulling with the controller's credentials for {}",
                auth.server
            ),
        );
    }
    let mut progress = docker.create_image(Some(options), None, credentials);
    let mut last_status = String::new();
    while let Some(item) = progress.next().await {
        let info = item.map_err(text)?;
        let status = [info.id.unwrap_or_default(), info.status.unwrap_or_default()]
            .join(" ")
            .trim()
            .to_string();
        if !status.is_empty() && status != last_status {
            sink.line(Stream::System, format!("pull: {status}"));
            last_status = status;
        }
    }
    Ok(())
}

/// Loads a `docker save` tarball into Docker.
pub async fn load_archive(
    docker: &Docker,
    archive: &Path,
    sink: &dyn LineSink,
) -> Result<(), String> {
    let file = tokio::fs::File::open(archive)
        .await
        .map_err(|err| format!("open {}: {err}", archive.display()))?;
    let body = tokio_util::io::ReaderStream::new(file);
    let mut progress = docker.import_image_stream(ImportImageOptions::default(), body, None);
    while let Some(item) = progress.next().await {
        let info = item.map_err(text)?;
        if let Some(error) = info.error_detail.and_then(|detail| detail.message) {
            return Err(error);
        }
        if let Some(stream) = info
            .stream
            .map(|line| line.trim().to_string())
            .filter(|line| !line.is_empty())
        {
            sink.line(Stream::System, format!("load: {stream}"));
        }
    }
    Ok(())
}

/// Builds an image from `dir` as the context with the build's Dockerfile,
/// target and args, tagged `build.image_tag`, passing the builder's output
/// to `sink`; returns the image id.
pub async fn build_image(
    docker: &Docker,
    dir: &Path,
    build: &berth_proto::v1::BuildSpec,
    sink: &dyn LineSink,
) -> Result<String, String> {
    // The context is packed into a temporary file next to the directory
    // and streamed from there, so a large bundle does not sit in memory.
    let packed = dir.with_extension("context.tar");
    {
        let (context_dir, packed) = (dir.to_path_buf(), packed.clone());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut archive = tar::Builder::new(std::fs::File::create(&packed)?);
            archive.follow_symlinks(false);
            archive.append_dir_all(".", &context_dir)?;
            archive.into_inner()?.sync_all()
        })
        .await
        .map_err(|err| format!("pack the build context: {err}"))?
        .map_err(|err| format!("pack the build context {}: {err}", dir.display()))?;
    }
    let file = tokio::fs::File::open(&packed)
        .await
        .map_err(|err| format!("open {}: {err}", packed.display()))?;
    let result = build_from(docker, build, file, sink).await;
    let _ = tokio::fs::remove_file(&packed).await;
    result
}

pub(super) async fn build_from(
    docker: &Docker,
    build: &berth_proto::v1::BuildSpec,
    context: tokio::fs::File,
    sink: &dyn LineSink,
) -> Result<String, String> {
    use bollard::query_parameters::BuildImageOptions;
    let options = BuildImageOptions {
        dockerfile: build.dockerfile.clone(),
        t: Some(build.image_tag.clone()),
        target: build.target.clone(),
        buildargs: Some(build.args.clone().into_iter().collect()),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let body = bollard::body_try_stream(tokio_util::io::ReaderStream::new(context));
    let mut progress = docker.build_image(options, None, Some(body));
    let mut image_id = String::new();
    while let Some(item) = progress.next().await {
        let info = item.map_err(text)?;
        if let Some(error) = info.error_detail.and_then(|detail| detail.message) {
            return Err(error);
        }
        if let Some(id) = info.aux.and_then(|aux| aux.id) {
            image_id = id;
        }
        for line in info.stream.iter().flat_map(|text| text.lines()) {
            let line = line.trim_end();
            if !line.is_empty() {
                sink.line(Stream::Stdout, line.to_string());
            }
        }
    }
    if image_id.is_empty() {
        let inspected = docker
            .inspect_image(&build.image_tag)
            .await
            .map_err(|err| {
                format!(
                    "the build ended without image {}: {}",
                    build.image_tag,
                    text(err)
                )
            })?;
        image_id = inspected.id.unwrap_or_default();
    }
    Ok(image_id)
}

/// Writes `docker save` of `image` to `path`.
pub async fn save_image(docker: &Docker, image: &str, path: &Path) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|err| format!("create {}: {err}", path.display()))?;
    let mut stream = docker.export_image(image);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(text)?;
        file.write_all(&chunk)
            .await
            .map_err(|err| format!("write {}: {err}", path.display()))?;
    }
    file.sync_all()
        .await
        .map_err(|err| format!("write {}: {err}", path.display()))?;
    Ok(())
}
