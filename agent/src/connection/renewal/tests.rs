//! Tests of the agent's renewal state: the controller's clock decides when
//! a request is due, one request is in flight at a time, and a refusal is
//! waited out.

use super::*;
use berth_shared::pki::{Authority, ClientKind, new_ca, new_csr};

/// A data directory holding a fresh agent certificate valid for 3 s.
fn files_with_fresh_cert() -> (tempfile::TempDir, Files, Authority) {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = Files::new(dir.path());
    let ca = new_ca("test ca").expect("ca");
    let authority = Authority::load(&ca.cert_pem, &ca.key_pem)
        .expect("authority")
        .with_agent_lifetime(Duration::from_secs(3));
    let (csr_pem, key_pem) = new_csr("agent").expect("csr");
    let issued = authority
        .issue_client_from_csr(&csr_pem, ClientKind::Agent, "agent")
        .expect("issued");
    std::fs::write(files.cert(), &issued.cert_pem).expect("cert");
    std::fs::write(files.key(), key_pem).expect("key");
    (dir, files, authority)
}

fn refused(retry_after_secs: u32) -> RenewResponse {
    RenewResponse {
        cert_pem: String::new(),
        refused: "certificate renewal refused: not due".into(),
        retry_after_secs,
    }
}

#[test]
fn the_controllers_clock_decides_when_a_renewal_is_due() {
    let (_dir, files, _) = files_with_fresh_cert();
    let mut renewal = Renewal::default();
    renewal.compare_clocks(now_ms());
    assert!(
        renewal.request(&files, "agent").is_none(),
        "a fresh certificate"
    );
    // The controller's clock is a minute ahead: by it, the certificate is due.
    renewal.compare_clocks(now_ms() + 60_000);
    let request = renewal.request(&files, "agent").expect("due");
    assert!((request.agent_now_ms - now_ms()).abs() < 5_000);
    assert!(renewal.request(&files, "agent").is_none(), "one in flight");
}

#[test]
fn a_refusal_is_waited_out_before_asking_again() {
    let (_dir, files, _) = files_with_fresh_cert();
    let mut renewal = Renewal::default();
    renewal.compare_clocks(now_ms() + 60_000);
    assert!(renewal.request(&files, "agent").is_some());
    renewal.answer(&files, refused(30));
    assert!(!renewal.is_installed());
    assert!(renewal.request(&files, "agent").is_none());
    let wait = renewal.not_before.expect("a wait") - Instant::now();
    assert!(wait > Duration::from_secs(29) && wait <= Duration::from_secs(30));
    // Once the wait has passed, it asks again.
    renewal.not_before = Some(Instant::now());
    assert!(renewal.request(&files, "agent").is_some());
}

#[test]
fn a_renewed_certificate_is_installed_with_its_key() {
    let (_dir, files, authority) = files_with_fresh_cert();
    let mut renewal = Renewal::default();
    renewal.compare_clocks(now_ms() + 60_000);
    let request = renewal.request(&files, "agent").expect("due");
    let issued = authority
        .issue_client_from_csr(&request.csr_pem, ClientKind::Agent, "agent")
        .expect("issued");
    renewal.answer(
        &files,
        RenewResponse {
            cert_pem: issued.cert_pem.clone(),
            refused: String::new(),
            retry_after_secs: 0,
        },
    );
    assert!(renewal.is_installed());
    assert_eq!(
        std::fs::read_to_string(files.cert()).expect("cert"),
        issued.cert_pem
    );
}
