//! Tests of certificate issuance and pins.
use super::*;
use x509_parser::extensions::ParsedExtension;

fn authority() -> Authority {
    let ca = new_ca("test ca").expect("ca");
    Authority::load(&ca.cert_pem, &ca.key_pem).expect("load")
}

fn parse(pem: &str) -> Vec<u8> {
    first_cert_der(pem).expect("pem").to_vec()
}

#[test]
fn issues_client_cert_from_controller_data_only() {
    let ca = authority();
    // A hostile CSR asking to be a CA and a server, with extra names.
    let key = KeyPair::generate().expect("key");
    let mut params =
        CertificateParams::new(vec!["controller.berth.internal".to_string()]).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.distinguished_name.push(DnType::CommonName, "admin");
    let csr = params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");

    let issued = ca
        .issue_client_from_csr(&csr, ClientKind::Agent, "01AGENT")
        .expect("issue");
    let der = parse(&issued.cert_pem);
    let (_, cert) = X509Certificate::from_der(&der).expect("parse");
    let info = cert_info(&der).expect("info");
    assert_eq!(info.common_name, "agent:01AGENT");
    assert_eq!(info.serial, issued.serial);
    let mut saw_eku = false;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::BasicConstraints(bc) => assert!(!bc.ca, "must not be a CA"),
            ParsedExtension::ExtendedKeyUsage(eku) => {
                saw_eku = true;
                assert!(eku.client_auth && !eku.server_auth);
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                assert!(san.general_names.is_empty(), "no names from the CSR")
            }
            _ => {}
        }
    }
    assert!(saw_eku);
    let lifetime = info.not_after_ms - info.not_before_ms;
    assert!(lifetime <= (AGENT_LIFETIME + CLOCK_SKEW).as_millis() as i64 + 2000);
}

#[test]
fn serials_are_random() {
    let ca = authority();
    let (csr, _key) = new_csr("x").expect("csr");
    let first = ca
        .issue_client_from_csr(&csr, ClientKind::Agent, "a")
        .expect("one");
    let second = ca
        .issue_client_from_csr(&csr, ClientKind::Agent, "a")
        .expect("two");
    assert_ne!(first.serial, second.serial);
}

#[test]
fn refuses_garbage_csr() {
    let ca = authority();
    assert!(matches!(
        ca.issue_client_from_csr("not a csr", ClientKind::Agent, "a"),
        Err(PkiError::BadCsr(_))
    ));
}

#[test]
fn pins_differ_between_cas() {
    let one = new_ca("one").expect("ca");
    let two = new_ca("two").expect("ca");
    let pin_one = spki_pin(&parse(&one.cert_pem)).expect("pin");
    assert_eq!(pin_one.len(), 64);
    assert_ne!(pin_one, spki_pin(&parse(&two.cert_pem)).expect("pin"));
}

#[test]
fn reads_back_the_names_of_a_server_certificate() {
    let names = ["ctl.example.com".to_string(), "198.18.0.1".to_string()];
    let server = authority()
        .issue_server(&names, "controller.berth.internal")
        .expect("issue");
    let info = cert_info(&parse(&server.cert_pem)).expect("info");
    assert_eq!(
        info.names,
        ["controller.berth.internal", "ctl.example.com", "198.18.0.1"]
    );
}
