//! Pebble, Let's Encrypt's test ACME server (Debian's `pebble`), for the
//! automatic-HTTPS test: its ACME directory and management API on loopback
//! ports the test picks, served with a certificate made here.
//!
//! Pebble runs with `PEBBLE_VA_ALWAYS_VALID=1`: it grants every challenge
//! without looking it up, since the test's domains exist in no DNS. The
//! rest of the ACME exchange (account, order, CSR, issuance) is real.

use std::process::Command;

use crate::caddy::free_port;
use crate::{DEADLINE, Running, skip};

/// A running Pebble.
pub struct Pebble {
    pub dir: tempfile::TempDir,
    /// `https://127.0.0.1:PORT/dir`.
    pub directory: String,
    /// The certificate Pebble serves its API with, for clients to trust.
    pub api_cert: std::path::PathBuf,
    management: u16,
    process: Running,
}

impl Pebble {
    /// Starts Pebble, or skips `test` when it is not installed.
    pub fn start(test: &str) -> Option<Pebble> {
        if Command::new("pebble").arg("-h").output().is_err() {
            skip(test, "pebble (apt-get install pebble)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-pebble-")
            .tempdir()
            .expect("tempdir");
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("params");
        let cert = params.self_signed(&key).expect("self-signed");
        let api_cert = dir.path().join("cert.pem");
        std::fs::write(&api_cert, cert.pem()).expect("cert");
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).expect("key");
        let (listen, management) = (free_port(), free_port());
        let config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": api_cert,
            "privateKey": dir.path().join("key.pem"),
            "httpPort": free_port(),
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, config.to_string()).expect("config");
        let mut command = Command::new("pebble");
        command
            .arg("-config")
            .arg(&config_path)
            .env("PEBBLE_VA_ALWAYS_VALID", "1")
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0");
        let process = Running::spawn(command, &dir.path().join("pebble.log"));
        let ready = process
            .stdout
            .wait_for("ACME directory available", DEADLINE);
        assert!(
            ready.is_some(),
            "pebble did not start:\n{}",
            process.log_tail()
        );
        Some(Pebble {
            directory: format!("https://127.0.0.1:{listen}/dir"),
            api_cert,
            management,
            dir,
            process,
        })
    }

    /// The root that Pebble's issued certificates chain to (Pebble makes a
    /// new one each start), written to a file for `curl --cacert`.
    pub fn issuing_root(&self) -> std::path::PathBuf {
        let path = self.dir.path().join("issuing-root.pem");
        let out = Command::new("curl")
            .args(["-sSf", "--max-time", "5", "--cacert"])
            .arg(&self.api_cert)
            .arg(format!("https://127.0.0.1:{}/roots/0", self.management))
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "pebble's root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&path, out.stdout).expect("root");
        path
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.process.kill9();
    }
}
