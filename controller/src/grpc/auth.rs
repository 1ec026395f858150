//! Authentication and authorization. Every call to the `Agent` and `Cli`
//! services passes [`authenticate`]: the peer certificate's serial is looked
//! up in the store, so revocations and role changes apply at once; a caller
//! without a certificate berth issued and still honours is refused. Handlers
//! then check the role they need with [`require`].

use berth_shared::pki::cert_info;
use tonic::{Request, Status};
use tracing::warn;

use crate::store::{Principal, PrincipalKind, Role, Store};

/// The authenticated caller, placed in the request's extensions.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    pub serial: String,
}

impl Caller {
    /// A short name for audit entries and `triggered_by`.
    pub fn who(&self) -> String {
        match self.principal.kind {
            PrincipalKind::User => self.principal.name.clone(),
            PrincipalKind::Agent => format!("agent:{}", self.principal.name),
        }
    }
}

/// Builds the interceptor that admits only `kind` callers.
pub fn authenticate(
    store: Store,
    kind: PrincipalKind,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |mut request: Request<()>| {
        let caller = identify(&store, &request, kind)?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

fn identify<T>(store: &Store, request: &Request<T>, kind: PrincipalKind) -> Result<Caller, Status> {
    let certs = request.peer_certs().ok_or_else(|| {
        Status::unauthenticated("no client certificate was presented; use a credential bundle from `berth-controller init` (admin.conf) or `berth-agent join`")
    })?;
    let leaf = certs
        .first()
        .ok_or_else(|| Status::unauthenticated("empty client certificate chain"))?;
    let info = cert_info(leaf)
        .map_err(|_| Status::unauthenticated("the client certificate could not be read"))?;
    let principal = store
        .principal(&info.serial)
        .map_err(|err| {
            warn!(error = %err, "principal lookup failed");
            Status::internal("the controller could not read its store; see its log")
        })?
        .ok_or_else(|| {
            Status::unauthenticated(
                "this certificate is not known to the controller; get a new credential",
            )
        })?;
    if principal.revoked {
        return Err(Status::permission_denied(format!(
            "the certificate of {} was revoked; an agent must join again with a new token",
            principal.name
        )));
    }
    if principal.kind != kind {
        let wanted = match kind {
            PrincipalKind::Agent => "an agent certificate",
            PrincipalKind::User => "a user credential",
        };
        return Err(Status::permission_denied(format!(
            "this call needs {wanted}"
        )));
    }
    Ok(Caller {
        principal,
        serial: info.serial,
    })
}

/// The caller of a request that passed [`authenticate`], or a refusal.
pub fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("the call was not authenticated"))
}

/// The caller, if its role is at least `role`.
pub fn require<T>(request: &Request<T>, role: Role) -> Result<Caller, Status> {
    let caller = caller(request)?;
    if caller.principal.role < role {
        return Err(Status::permission_denied(format!(
            "{} has role {}; this needs {}",
            caller.principal.name,
            caller.principal.role.as_str(),
            role.as_str()
        )));
    }
    Ok(caller)
}
