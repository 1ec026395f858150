//! `Enroll.JoinAgent`: a join token and a CSR become an agent certificate.
//! The agent checked our CA against the token's pin before sending the
//! token; we check the token, take only the public key from the CSR, and
//! store the agent, its name and its certificate serial in one transaction.

use std::sync::Arc;

use berth_proto::v1::enroll_server::Enroll;
use berth_proto::v1::{JoinAgentRequest, JoinAgentResponse};
use berth_proto::{MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use berth_shared::id::AgentId;
use berth_shared::labels::{Labels, check_label_part};
use berth_shared::pki::{ClientKind, PkiError};
use berth_shared::record::Timestamp;
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use crate::ops::{Code, Error};
use crate::server::Context;
use crate::store::{AgentRecord, Principal, PrincipalKind, Role};

pub struct EnrollApi {
    context: Arc<Context>,
    /// Failed joins per source address per minute, when limited.
    failures: Option<crate::limit::RateLimit>,
}

impl EnrollApi {
    /// `failure_limit`: failed joins allowed per source address per
    /// minute (`serve --join-failure-limit`); 0 for no limit.
    pub fn new(context: Arc<Context>, failure_limit: u32) -> EnrollApi {
        EnrollApi {
            context,
            failures: (failure_limit > 0).then(|| {
                crate::limit::RateLimit::new(failure_limit, std::time::Duration::from_secs(60))
            }),
        }
    }

    /// Refuses a source address that used up its failed joins this minute.
    fn admit(&self, peer: Option<std::net::IpAddr>) -> Result<(), Status> {
        let (Some(limit), Some(peer)) = (&self.failures, peer) else {
            return Ok(());
        };
        limit
            .admit(&peer, std::time::Instant::now())
            .map_err(|wait| {
                warn!(%peer, "join attempts rate-limited");
                Error::new(Code::AgentJoinRateLimited, format!(
                    "too many failed join attempts from {peer} ({} within a minute, the limit set by berth-controller serve --join-failure-limit); try again in {}s with a valid token (`berth token create`)",
                    limit.limit(),
                    wait.as_secs().max(1)
                ))
                .into()
            })
    }

    /// Counts a refused token (unknown, used up, revoked or expired)
    /// against its source address; other outcomes are not counted.
    fn count(
        &self,
        peer: Option<std::net::IpAddr>,
        outcome: &Result<Response<JoinAgentResponse>, Status>,
    ) {
        if let (Some(limit), Some(peer), Err(status)) = (&self.failures, peer, outcome)
            && status.code() == tonic::Code::PermissionDenied
        {
            limit.count(peer, std::time::Instant::now());
        }
    }
}

/// Checks the protocol version an agent speaks (at join and in its hello).
pub fn check_protocol(version: u32) -> Result<(), Status> {
    if (MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version) {
        return Ok(());
    }
    Err(Error::new(
        Code::AgentProtocolMismatch,
        format!(
            "this controller serves agent protocol {}, the agent speaks {version}; install a matching berth-agent",
            served_versions()
        ),
    )
    .into())
}

/// `version N`, or `versions M to N` when it serves more than one.
fn served_versions() -> String {
    if MIN_PROTOCOL_VERSION == PROTOCOL_VERSION {
        format!("version {PROTOCOL_VERSION}")
    } else {
        format!("versions {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}")
    }
}

fn check_request(request: &JoinAgentRequest) -> Result<Labels, Status> {
    check_protocol(request.protocol_version)?;
    check_label_part(&request.name, false)
        .map_err(|err| Error::invalid(format!("agent name {err}")))?;
    if request.labels.len() > 64 {
        return Err(Error::invalid("an agent may carry at most 64 labels").into());
    }
    let mut labels = Labels::new();
    for (key, value) in &request.labels {
        check_label_part(key, true).map_err(|err| Error::invalid(format!("label key {err}")))?;
        check_label_part(value, false)
            .map_err(|err| Error::invalid(format!("label value {err}")))?;
        labels.insert(key.clone(), value.clone());
    }
    Ok(labels)
}

#[tonic::async_trait]
impl Enroll for EnrollApi {
    async fn join_agent(
        &self,
        request: Request<JoinAgentRequest>,
    ) -> Result<Response<JoinAgentResponse>, Status> {
        let peer = request.remote_addr().map(|address| address.ip());
        self.admit(peer)?;
        let outcome = self.enroll(request).await;
        self.count(peer, &outcome);
        outcome
    }
}

impl EnrollApi {
    async fn enroll(
        &self,
        request: Request<JoinAgentRequest>,
    ) -> Result<Response<JoinAgentResponse>, Status> {
        let peer = request
            .remote_addr()
            .map(|addr| addr.to_string())
            .unwrap_or_default();
        let request = request.into_inner();
        let mut labels = check_request(&request)?;
        let store = &self.context.store;
        let token = store
            .get_token(&request.token_id)?
            .ok_or_else(|| Error::new(Code::TokenInvalid, "the join token is not known to this controller; create one with `berth token create`"))?;
        if let Err(err) = token.check(&request.token_secret, Timestamp::now()) {
            let token_id = berth_shared::text::clip(&request.token_id, 40);
            warn!(%token_id, %peer, "join refused");
            return Err(err.into());
        }
        // The token's labels (set by an admin) win over the agent's own.
        labels.extend(token.labels.clone());
        let agent_id = AgentId::new();
        let issued = self
            .context
            .authority
            .issue_client_from_csr(&request.csr_pem, ClientKind::Agent, &agent_id.to_string())
            .map_err(|err| match err {
                PkiError::BadCsr(reason) => Error::invalid(format!(
                    "the certificate signing request is invalid: {reason}"
                )),
                other => Error::new(Code::Internal, other.to_string()),
            })?;
        let record = AgentRecord {
            id: agent_id,
            name: request.name.clone(),
            labels,
            auto_labels: Labels::new(),
            status: "active".into(),
            enrolled_at: Timestamp::now(),
            revoked_at: None,
            version: Some(request.agent_version.clone()),
            facts: None,
            last_seen_at: None,
            offline_since: None,
            serials: vec![issued.serial.clone()],
            cert_not_after: Timestamp(issued.not_after_ms),
            renewed_at: Vec::new(),
        };
        let principal = Principal {
            kind: PrincipalKind::Agent,
            id: agent_id.to_string(),
            name: request.name.clone(),
            role: Role::Viewer,
            revoked: false,
        };
        store.join_agent(
            &request.token_id,
            &request.token_secret,
            &record,
            &principal,
        )?;
        store.audit(
            &format!("token:{}", request.token_id),
            "agent.join",
            &request.name,
            "ok",
        )?;
        store.flush().await?;
        info!(%agent_id, name = %request.name, %peer, "agent joined");
        Ok(Response::new(JoinAgentResponse {
            agent_id: agent_id.to_string(),
            name: request.name,
            cert_pem: issued.cert_pem,
            ca_pem: self.context.ca_pem.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Some(message)` when `version` is refused.
    fn check(version: u32) -> Option<(tonic::Code, String)> {
        check_protocol(version)
            .err()
            .map(|status| (status.code(), status.message().to_string()))
    }

    #[test]
    fn serves_only_the_protocol_versions_it_knows() {
        for version in MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION {
            assert_eq!(check(version), None, "version {version}");
        }
        let accepted = format!("serves agent protocol {}, ", served_versions());
        // Version 1 (before the typed wire) is refused: its outcomes are in
        // fields version 2 reserves.
        for version in [0, 1, PROTOCOL_VERSION + 1, u32::MAX] {
            let (code, message) = check(version).expect("refused");
            assert_eq!(code, tonic::Code::FailedPrecondition, "version {version}");
            assert!(
                message.contains(&accepted)
                    && message.contains(&format!("speaks {version};"))
                    && message.ends_with("install a matching berth-agent"),
                "{message}"
            );
        }
        assert_eq!(
            check(1).map(|(_, message)| message).as_deref(),
            Some(
                "this controller serves agent protocol version 2, the agent speaks 1; install a matching berth-agent"
            )
        );
    }
}
