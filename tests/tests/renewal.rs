//! Certificate renewal under abuse: a client holding an agent's real
//! credentials that floods `RenewRequest`s gets at most the allowed
//! renewals, certificates replaced by a renewal are refused, the agent holds
//! at most two valid certificates, and a renewal refused as early or from a
//! skewed clock says why.

use std::time::Duration;

use berth_shared::time::now_ms;
use berth_tests::agent_link::{Credential, client, open};
use berth_tests::{Agent, Controller};

/// The controller's limit (`MAX_RENEWALS_PER_HOUR` in
/// `controller/src/grpc/agent/renew.rs`).
const RENEWALS_PER_HOUR: usize = 4;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn valid_certificates(controller: &Controller, name: &str) -> u64 {
    let shown = controller
        .berth(&["agents", "show", name, "-o", "json"])
        .json();
    shown["valid_certificates"].as_u64().expect("a count")
}

#[test]
fn a_renewal_flood_gets_at_most_the_allowed_renewals() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let controller = Controller::start_with(&["--agent-cert-lifetime", "6s"]);
    let token = controller.token(&[]);
    let agent = Agent::join_with(&controller, "flood", "role=web", &token).expect("join");
    let ca_pem = std::fs::read_to_string(agent.dir.join("ca.pem")).expect("ca");
    let first = Credential::of_agent(&agent.dir);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut link = client(&controller.url, &ca_pem, &first).await;
        let mut stream = open(&mut link).await.expect("the agent's stream");
        let skew = stream.welcome.now_ms - now_ms();
        assert!(
            skew.abs() < 60_000,
            "the welcome carries the controller's clock: {skew} ms off"
        );

        // Too early by the controller's clock, whatever the agent thinks.
        let (early, _) = stream.renew(now_ms()).await;
        assert!(early.cert_pem.is_empty());
        assert!(early.refused.contains("not due until"), "{}", early.refused);
        assert!(early.retry_after_secs >= 1);
        // A clock 40 days ahead is refused, naming the skew.
        let (skewed, _) = stream.renew(now_ms() + 40 * DAY_MS).await;
        assert!(skewed.cert_pem.is_empty());
        assert!(
            skewed.refused.contains("ahead of the controller's"),
            "{}",
            skewed.refused
        );

        // Wait out two thirds of the certificate's lifetime (the rule under
        // test is about time itself, so this waits for the clock).
        let der = berth_shared::pki::first_cert_der(&first.cert_pem).expect("der");
        let info = berth_shared::pki::cert_info(&der).expect("info");
        let due = info.not_before_ms + (info.not_after_ms - info.not_before_ms) * 2 / 3;
        let wait = u64::try_from(due + 500 - now_ms()).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(wait)).await;

        let mut renewed = Vec::new();
        for _ in 0..200 {
            let (answer, key_pem) = stream.renew(now_ms()).await;
            if answer.cert_pem.is_empty() {
                assert!(
                    answer.refused.contains("times in the last hour"),
                    "{}",
                    answer.refused
                );
                assert!(answer.retry_after_secs > 60);
            } else {
                renewed.push(Credential {
                    cert_pem: answer.cert_pem,
                    key_pem,
                });
            }
        }
        assert_eq!(
            renewed.len(),
            RENEWALS_PER_HOUR,
            "renewals granted to a flood of 200"
        );
        assert_eq!(valid_certificates(&controller, "flood"), 2);

        // Certificates a later renewal replaced are refused at once.
        let (newest, replaced) = renewed.split_last().expect("renewed");
        for old in replaced {
            let mut link = client(&controller.url, &ca_pem, old).await;
            let refused = open(&mut link)
                .await
                .err()
                .expect("a replaced certificate is refused");
            assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
        }
        // The newest works, and using it retires the first one.
        let mut link = client(&controller.url, &ca_pem, newest).await;
        let _newest_stream = open(&mut link)
            .await
            .expect("the newest certificate connects");
        assert_eq!(valid_certificates(&controller, "flood"), 1);
        let mut link = client(&controller.url, &ca_pem, &first).await;
        let refused = open(&mut link)
            .await
            .err()
            .expect("the first certificate is retired");
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
        assert_ne!(newest.serial(), first.serial());
    });
    drop(agent);
}
