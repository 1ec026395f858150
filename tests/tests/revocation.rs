//! Revocation cuts every stream of an agent: a download (`GetBlob`) already
//! in progress with the agent's credentials ends within a second of
//! `berth agents revoke`, instead of running to the end of the blob.

use std::io::Read;
use std::time::{Duration, Instant};

use berth_proto::v1::GetBlobRequest;
use berth_tests::agent_link::{Credential, client};
use berth_tests::{Agent, Controller, write_bundle};

const MANIFEST: &str = r#"
app = "big"
[target]
labels = { role = "dl" }
[setup]
run = ["true"]
timeout = "1m"
"#;
const PAYLOAD_BYTES: usize = 50 * 1024 * 1024;

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
    agent.kill9();
    let ca_pem = std::fs::read_to_string(agent.dir.join("ca.pem")).expect("ca");
    let credential = Credential::of_agent(&agent.dir);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
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
