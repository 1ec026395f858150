//! Bundle downloads from the controller's blob store: resumable (a cut
//! download continues from where it stopped), verified against the digest,
//! and cached by digest so a host downloads each bundle once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use berth_proto::MAX_MESSAGE_BYTES;
use berth_proto::v1::GetBlobRequest;
use berth_proto::v1::agent_client::AgentClient;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tonic::transport::Channel;

/// Attempts before a download is given up.
const ATTEMPTS: u32 = 6;

fn hex_of(digest: &str) -> Result<&str> {
    let hex = digest
        .strip_prefix("sha256:")
        .context("bundle digest must start with sha256:")?;
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("bundle digest `{digest}` is malformed");
    }
    Ok(hex)
}

async fn sha256_of(path: &Path) -> Result<String> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            return Ok(format!("sha256:{}", hex::encode(hasher.finalize())));
        }
        hasher.update(&buffer[..read]);
    }
}

/// Returns the local path of a verified blob, downloading what is missing.
pub async fn blob(
    dir: &Path,
    digest: &str,
    size: u64,
    channel: &mut watch::Receiver<Option<Channel>>,
    progress: impl Fn(String),
) -> Result<PathBuf> {
    let hex = hex_of(digest)?;
    tokio::fs::create_dir_all(dir).await?;
    let done = dir.join(format!("{hex}.tar.gz"));
    if done.exists() {
        return Ok(done);
    }
    let part = dir.join(format!("{hex}.part"));
    let mut last_error = None;
    for attempt in 1..=ATTEMPTS {
        let offset = tokio::fs::metadata(&part)
            .await
            .map_or(0, |meta| meta.len());
        if offset < size {
            if attempt > 1 {
                progress(format!(
                    "resuming bundle download at byte {offset} of {size} (attempt {attempt})"
                ));
            }
            match download(channel, digest, &part, offset).await {
                Ok(()) => {}
                Err(err) => {
                    last_error = Some(err);
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                    continue;
                }
            }
        }
        let actual = sha256_of(&part).await?;
        if actual != digest {
            tokio::fs::remove_file(&part).await?;
            bail!("the downloaded bundle hashes to {actual}, not {digest}; it was discarded");
        }
        tokio::fs::rename(&part, &done).await?;
        return Ok(done);
    }
    Err(last_error
        .unwrap_or_else(|| anyhow::anyhow!("bundle download failed"))
        .context(format!("download bundle {digest}")))
}

/// The agent's current channel to the controller, waiting up to 60 s for
/// one while the link is down.
async fn connected(channel: &mut watch::Receiver<Option<Channel>>) -> Result<Channel> {
    tokio::time::timeout(Duration::from_secs(60), channel.wait_for(Option::is_some))
        .await
        .context("no connection to the controller for 60s")?
        .context("agent is shutting down")?
        .clone()
        .context("no connection")
}

async fn download(
    channel: &mut watch::Receiver<Option<Channel>>,
    digest: &str,
    part: &Path,
    offset: u64,
) -> Result<()> {
    let mut client =
        AgentClient::new(connected(channel).await?).max_decoding_message_size(MAX_MESSAGE_BYTES);
    let mut stream = client
        .get_blob(GetBlobRequest {
            digest: digest.to_string(),
            offset,
        })
        .await
        .map_err(|status| anyhow::anyhow!("{}", status.message()))?
        .into_inner();
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(part)
        .await?;
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|status| anyhow::anyhow!("{}", status.message()))?
    {
        file.write_all(&chunk.data).await?;
    }
    file.flush().await?;
    file.sync_all().await?;
    Ok(())
}

/// Uploads a build result to the controller's blob store under build task
/// `task_id` (or, for a git fetch's bundle, under `fetch_request_id` with
/// `task_id` empty); returns its digest and size. Tried up to three times (the
/// controller keeps nothing of a cut upload, and refuses a digest that does
/// not match the bytes).
pub async fn upload(
    channel: &watch::Sender<Option<Channel>>,
    path: &Path,
    task_id: &str,
    fetch_request_id: u64,
) -> Result<(String, u64)> {
    let digest = sha256_of(path).await?;
    let size = tokio::fs::metadata(path).await?.len();
    let mut last_error = None;
    for attempt in 1..=3u64 {
        match upload_once(
            &mut channel.subscribe(),
            path,
            (task_id, fetch_request_id),
            &digest,
            size,
        )
        .await
        {
            Ok(()) => return Ok((digest, size)),
            Err(err) => {
                last_error = Some(err);
                tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
            }
        }
    }
    Err(last_error
        .unwrap_or_else(|| anyhow::anyhow!("upload failed"))
        .context(format!("upload {}", path.display())))
}

async fn upload_once(
    channel: &mut watch::Receiver<Option<Channel>>,
    path: &Path,
    (task_id, fetch_request_id): (&str, u64),
    digest: &str,
    size: u64,
) -> Result<()> {
    use berth_proto::v1::PutBlobChunk;
    let mut client =
        AgentClient::new(connected(channel).await?).max_encoding_message_size(MAX_MESSAGE_BYTES);
    let mut file = tokio::fs::File::open(path).await?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<PutBlobChunk>(4);
    let (chunk_digest, task_id) = (digest.to_string(), task_id.to_string());
    let reader = tokio::spawn(async move {
        let mut first = true;
        loop {
            let mut data = vec![0u8; berth_proto::BLOB_CHUNK_BYTES];
            let read = file.read(&mut data).await?;
            data.truncate(read);
            if read == 0 && !first {
                return Ok::<(), std::io::Error>(());
            }
            let chunk = PutBlobChunk {
                digest: if first {
                    chunk_digest.clone()
                } else {
                    String::new()
                },
                size: if first { size } else { 0 },
                data,
                task_id: if first {
                    task_id.clone()
                } else {
                    String::new()
                },
                fetch_request_id: if first { fetch_request_id } else { 0 },
            };
            first = false;
            if sender.send(chunk).await.is_err() || read == 0 {
                return Ok(());
            }
        }
    });
    let result = client
        .put_build_result(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await;
    reader.await.context("read the build result")??;
    let stored = result.map_err(|status| anyhow::anyhow!("{}", status.message()))?;
    let stored = stored.into_inner();
    if stored.digest != digest || stored.size != size {
        bail!(
            "the controller stored {} ({} bytes), not {digest} ({size} bytes)",
            stored.digest,
            stored.size
        );
    }
    Ok(())
}
