//! Clock skew named as such: when the controller's certificate is refused
//! for its validity dates, the likely cause is this host's clock, and the
//! operator is told so (with how far off it looks) instead of being sent
//! after the address or the token.

use std::time::Duration;

use berth_shared::time::{format_duration, rfc3339};
use rustls::CertificateError;
use rustls::pki_types::UnixTime;

/// What a certificate refused for its dates, anywhere in `err`'s chain,
/// says about this host's clock; `None` for any other failure.
pub fn clock_hint(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|cause| {
        // tokio-rustls wraps rustls's error in an `io::Error`, whose
        // `source()` skips it.
        let inner = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match inner.or_else(|| cause.downcast_ref::<rustls::Error>())? {
            rustls::Error::InvalidCertificate(refused) => hint(refused),
            _ => None,
        }
    })
}

fn hint(refused: &CertificateError) -> Option<String> {
    const BEHIND: &str = "this host's clock is behind (clock skew): set its time (NTP)";
    const AHEAD: &str = "this host's clock is ahead (clock skew): set its time (NTP); or the certificate expired (`berth-controller rotate-server-cert` replaces it)";
    Some(match refused {
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "the controller's certificate is valid from {}, {} after this host's clock ({}): {BEHIND}",
            at(*not_before),
            span(*not_before, *time),
            at(*time)
        ),
        CertificateError::NotValidYet => {
            format!("the controller's certificate is not valid yet by this host's clock: {BEHIND}")
        }
        CertificateError::ExpiredContext { time, not_after } => format!(
            "the controller's certificate expired at {}, {} before this host's clock ({}): {AHEAD}",
            at(*not_after),
            span(*time, *not_after),
            at(*time)
        ),
        CertificateError::Expired => {
            format!("the controller's certificate has expired by this host's clock: {AHEAD}")
        }
        _ => return None,
    })
}

fn at(time: UnixTime) -> String {
    rfc3339(
        i64::try_from(time.as_secs())
            .unwrap_or(i64::MAX)
            .saturating_mul(1000),
    )
}

fn span(later: UnixTime, earlier: UnixTime) -> String {
    format_duration(Duration::from_secs(
        later.as_secs().saturating_sub(earlier.as_secs()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(refused: CertificateError, expected: &[&str]) {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(refused),
        );
        let err = anyhow::Error::new(io).context("the TLS handshake failed");
        let hint = clock_hint(&err).expect("a clock hint");
        for part in expected {
            assert!(hint.contains(part), "{part:?} missing from: {hint}");
        }
    }

    #[test]
    fn names_a_clock_behind_or_ahead() {
        let time = UnixTime::since_unix_epoch(Duration::from_secs(1_000_000));
        let later = UnixTime::since_unix_epoch(Duration::from_secs(1_000_600));
        check(
            CertificateError::NotValidYetContext {
                time,
                not_before: later,
            },
            &["10m after this host's clock", "behind (clock skew)"],
        );
        check(
            CertificateError::ExpiredContext {
                time: later,
                not_after: time,
            },
            &["10m before this host's clock", "ahead (clock skew)"],
        );
        check(CertificateError::NotValidYet, &["behind"]);
    }

    #[test]
    fn other_failures_say_nothing_of_the_clock() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert_eq!(clock_hint(&anyhow::Error::new(io)), None);
        assert_eq!(clock_hint(&anyhow::anyhow!("connection refused")), None);
    }
}
