//! Bounded inputs from the network: an oversized message is refused and the
//! controller keeps serving.

use berth_proto::v1::cli_client::CliClient;
use berth_proto::v1::{PutBlobChunk, WhoAmIRequest};
use berth_shared::credentials::Bundle;
use berth_tests::Controller;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

#[test]
fn an_oversized_message_is_refused_and_the_controller_stays_up() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let controller = Controller::start();
    let bundle = Bundle::load(&controller.admin()).expect("admin bundle");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&bundle.ca_pem))
            .identity(Identity::from_pem(&bundle.cert_pem, &bundle.key_pem))
            .domain_name(berth_proto::CONTROLLER_TLS_NAME);
        let channel = Endpoint::from_shared(controller.url.clone())
            .expect("url")
            .tls_config(tls)
            .expect("tls")
            .connect()
            .await
            .expect("connect");
        let mut client = CliClient::new(channel).max_encoding_message_size(64 * 1024 * 1024);
        let huge = PutBlobChunk {
            digest: format!("sha256:{}", "0".repeat(64)),
            size: 5 * 1024 * 1024,
            data: vec![7u8; 5 * 1024 * 1024],
            task_id: String::new(),
            fetch_request_id: 0,
        };
        let status = client
            .put_blob(futures_util_stream(huge))
            .await
            .expect_err("a 5 MiB message must be refused");
        assert!(
            matches!(
                status.code(),
                tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
            ),
            "{status:?}"
        );
        let me = client
            .who_am_i(WhoAmIRequest {})
            .await
            .expect("the controller still answers")
            .into_inner();
        assert_eq!(me.principal, "admin");
    });
}

fn futures_util_stream(chunk: PutBlobChunk) -> impl tokio_stream::Stream<Item = PutBlobChunk> {
    tokio_stream::iter(vec![chunk])
}
