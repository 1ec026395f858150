//! Secrets a container gets as files (`[secrets] NAME = { file = ... }`):
//! put into the created container through Docker's archive API before it
//! starts, straight from memory. Nothing is written on the agent's disk;
//! the file lives in the container's own layer, so it survives a restart
//! of the container or of Docker and goes with the container.

use berth_proto::v1::TaskSpec;
use bollard::Docker;
use bollard::query_parameters::UploadToContainerOptions;

use crate::stage::shell::{LineSink, Stream};

use super::text;

/// Mode of a secret's file in the container: readable by the container's
/// user whoever it is (as Docker's own secrets), written by no one.
const FILE_MODE: u32 = 0o444;

/// Puts the task's file secrets into container `name`, which is created
/// and not started.
pub async fn put(
    docker: &Docker,
    name: &str,
    task: &TaskSpec,
    sink: &dyn LineSink,
) -> Result<(), String> {
    let files: Vec<_> = task
        .secrets
        .iter()
        .filter(|secret| !secret.file.is_empty())
        .collect();
    if files.is_empty() {
        return Ok(());
    }
    let mut archive = tar::Builder::new(Vec::new());
    for secret in &files {
        let path = secret.file.trim_start_matches('/');
        let mut header = tar::Header::new_gnu();
        header.set_size(secret.value.len() as u64);
        header.set_mode(FILE_MODE);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        archive
            .append_data(&mut header, path, secret.value.as_bytes())
            .map_err(|err| format!("could not pack secret {} as a file: {err}", secret.name))?;
    }
    let bytes = archive
        .into_inner()
        .map_err(|err| format!("could not pack the secret files: {err}"))?;
    let options = UploadToContainerOptions {
        path: "/".to_string(),
        ..Default::default()
    };
    docker
        .upload_to_container(name, Some(options), bollard::body_full(bytes.into()))
        .await
        .map_err(|err| {
            format!(
                "could not put the secret files into container {name}: {}",
                text(err)
            )
        })?;
    let names: Vec<String> = files
        .iter()
        .map(|secret| format!("{} at {}", secret.name, secret.file))
        .collect();
    sink.line(
        Stream::System,
        format!("secret files put in the container: {}", names.join(", ")),
    );
    Ok(())
}
