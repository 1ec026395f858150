//! Revocation cuts every stream of an agent: a download (`GetBlob`) or a
//! build result upload (`PutBuildResult`) already in progress with the
//! agent's credentials ends within a second of `berth agents revoke`,
//! instead of running to its end.

use std::io::Read;
use std::time::{Duration, Instant};

use berth_proto::v1::{GetBlobRequest, PutBlobChunk};
use berth_tests::agent_link::{Credential, client};
use berth_tests::{Agent, Controller, eventually, id_of, write_bundle};

const MANIFEST: &str = r#"
app = "big"
[target]
labels = { role = "dl" }
[setup]
run = ["true"]
timeout = "1m"
"#;
const PAYLOAD_BYTES: usize = 50 * 1024 * 1024;

/// Stops `agent` and hands its credentials to the test, with a runtime to
/// call the controller as that agent.
fn credentials_of(agent: &mut Agent) -> (tokio::runtime::Runtime, String, Credential) {
    agent.kill9();
    let ca_pem = std::fs::read_to_string(agent.dir.join("ca.pem")).expect("ca");
    let credential = Credential::of_agent(&agent.dir);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    (runtime, ca_pem, credential)
}

#[test]
fn revoking_an_agent_cuts_its_download_in_progress() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let controller = Controller::start();
    let mut agent = Agent::join(&controller, "dl", "role=dl");
    let bundle = write_bundle(controller.dir.path(), "big", MANIFEST, &[]);
    // Random bytes do not compress, so the bundle stays about 50 MiB.
    let mut payload = vec![0u8; PAYLOAD_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut payload))
        .expect("random payload");
    std::fs::write(bundle.join("payload.bin"), &payload).expect("payload");
    // The deploy grants the bundle to the agent (which downloads it once).
    let (code, deployment, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 0, "{stderr}");
    let digest = deployment["bundle_digest"]
        .as_str()
        .expect("bundle digest")
        .to_string();
    // The test downloads it again with the agent's own credentials.
    let (runtime, ca_pem, credential) = credentials_of(&mut agent);
    runtime.block_on(async {
        let mut link = client(&controller.url, &ca_pem, &credential).await;
        let mut download = link
            .get_blob(GetBlobRequest { digest, offset: 0 })
            .await
            .expect("the download starts")
            .into_inner();
        let first = download
            .message()
            .await
            .expect("a first chunk")
            .expect("data");
        let before = first.data.len();

        let revoked = controller.berth(&["agents", "revoke", "dl"]);
        assert_eq!(revoked.code, 0, "{}", revoked.stderr);
        let cut_at = Instant::now();
        let mut after = 0usize;
        let ended = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                match download.message().await {
                    Ok(Some(chunk)) => after += chunk.data.len(),
                    Ok(None) => return None,
                    Err(status) => return Some(status),
                }
            }
        })
        .await
        .expect("the download is cut within a second of the revocation");
        let status = ended.expect("the download ends with an error, not as complete");
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
        assert!(status.message().contains("revoked"), "{status:?}");
        assert!(cut_at.elapsed() < Duration::from_secs(1));
        // What was already in flight (flow-control windows) may still
        // arrive, but not the rest of the blob.
        assert!(
            before + after < PAYLOAD_BYTES / 2,
            "{after} bytes arrived after the revocation"
        );
    });
}

#[test]
fn revoking_a_build_agent_cuts_its_upload_in_progress() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let controller = Controller::start();
    let mut builder = Agent::join(&controller, "builder", "role=build");
    let _web = Agent::join(&controller, "web-1", "role=web");
    let marker = controller.dir.path().join("building");
    let manifest = format!(
        "app = \"slow\"\n[target]\nhosts = [\"web-1\"]\n[build]\nlabels = {{ role = \"build\" }}\nrun = [\"touch {}\", \"sleep 120\"]\nartifact = \"out\"\n",
        marker.display()
    );
    let bundle = write_bundle(controller.dir.path(), "slow", &manifest, &[]);
    let id = id_of(&controller.deploy_detached(&bundle, &[]).json());
    eventually("the build to start", 400, Duration::from_millis(50), || {
        marker.exists().then_some(())
    });
    let shown = controller.show(&id);
    let task_id = shown["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|task| task["kind"] == "build")
        .and_then(|task| task["id"].as_str())
        .expect("the build task")
        .to_string();
    // The test uploads a result for the build with the builder's own
    // credentials, slowly, as a large result over a slow link would go.
    let (runtime, ca_pem, credential) = credentials_of(&mut builder);
    runtime.block_on(async {
        let mut link = client(&controller.url, &ca_pem, &credential).await;
        let (chunks, outgoing) = tokio::sync::mpsc::channel::<PutBlobChunk>(4);
        let upload = tokio::spawn(async move {
            link.put_build_result(tokio_stream::wrappers::ReceiverStream::new(outgoing))
                .await
        });
        let chunk = || PutBlobChunk {
            data: vec![7u8; 64 * 1024],
            ..Default::default()
        };
        let first = PutBlobChunk {
            digest: format!("sha256:{}", "0".repeat(64)),
            size: PAYLOAD_BYTES as u64,
            task_id: task_id.clone(),
            ..chunk()
        };
        chunks.send(first).await.expect("the upload starts");
        // The controller takes chunks while the builder holds the build.
        for _ in 0..8 {
            chunks.send(chunk()).await.expect("the upload goes on");
        }
        assert!(
            !upload.is_finished(),
            "the upload is refused before the revocation"
        );

        let revoked = controller.berth(&["agents", "revoke", "builder"]);
        assert_eq!(revoked.code, 0, "{}", revoked.stderr);
        let cut_at = Instant::now();
        let feeding = tokio::spawn(async move {
            while chunks.send(chunk()).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let result = tokio::time::timeout(Duration::from_secs(1), upload)
            .await
            .expect("the upload is cut within a second of the revocation")
            .expect("the upload task");
        feeding.abort();
        let status = result.expect_err("the upload ends with an error, not as stored");
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
        assert!(status.message().contains("revoked"), "{status:?}");
        assert!(cut_at.elapsed() < Duration::from_secs(1));
    });
}
