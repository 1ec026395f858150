//! Plain TLS clients of the controller's port, below gRPC: to hold
//! connections open (the connection limits) or to see the certificate the
//! controller serves (its rotation).

use std::sync::Arc;

use berth_shared::pki::{CertInfo, cert_info, first_cert_der};
use tokio_rustls::TlsConnector;

use crate::{Controller, DEADLINE};

/// A TLS client that trusts the controller's CA and has no certificate.
pub fn anonymous_tls(controller: &Controller) -> TlsConnector {
    let ca = std::fs::read_to_string(controller.dir.path().join("controller/pki/ca.pem"))
        .expect("ca.pem");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(first_cert_der(&ca).expect("ca der"))
        .expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// The certificate the controller serves now, checked against its CA for
/// the fixed name agents expect.
pub fn served_certificate(controller: &Controller) -> CertInfo {
    let tls = anonymous_tls(controller);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let name = rustls::pki_types::ServerName::try_from(berth_proto::CONTROLLER_TLS_NAME)
            .expect("name");
        let handshake = async {
            let tcp = tokio::net::TcpStream::connect(&controller.address).await?;
            tls.connect(name, tcp).await
        };
        let stream = tokio::time::timeout(DEADLINE, handshake)
            .await
            .expect("the handshake did not finish")
            .expect("a TLS handshake trusting only the controller's CA");
        let leaf = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .expect("the controller's certificate");
        cert_info(leaf).expect("a readable certificate")
    })
}
