//! Authentication and authorization. Every call to the `Agent` and `Cli`
//! services passes [`authenticate`]: the peer certificate's serial is looked
//! up in the store, so revocations and role changes apply at once; a caller
//! without a certificate berth issued and still honours is refused. Handlers
//! pass the [`Caller`] to the application layer, which checks roles.

use berth_shared::pki::cert_info;
use tonic::{Request, Status};

pub use crate::ops::Caller;
use crate::ops::{Code, Error};
use crate::store::{PrincipalKind, Store};

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
    let unauthenticated = |message: &str| Error::new(Code::AuthUnauthenticated, message);
    let certs = request.peer_certs().ok_or_else(|| {
        unauthenticated("no client certificate was presented; use a credential bundle from `berth-controller init` (admin.conf) or `berth-agent join`")
    })?;
    let leaf = certs
        .first()
        .ok_or_else(|| unauthenticated("empty client certificate chain"))?;
    let info =
        cert_info(leaf).map_err(|_| unauthenticated("the client certificate could not be read"))?;
    Ok(crate::ops::auth::by_certificate(store, &info.serial, kind)?)
}

/// The caller of a request that passed [`authenticate`], or a refusal.
pub fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| {
            Error::new(Code::AuthUnauthenticated, "the call was not authenticated").into()
        })
}
