//! The dashboard's stylesheet and scripts, compiled into the binary (no
//! build step, no Node). Each is served with a strong ETag and its URL
//! carries a hash of its content, so browsers cache it until it changes.

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use sha2::{Digest, Sha256};

/// One embedded file.
struct Asset {
    name: &'static str,
    kind: &'static str,
    body: &'static str,
}

/// A script of the dashboard.
const fn script(name: &'static str, body: &'static str) -> Asset {
    Asset {
        name,
        kind: "text/javascript; charset=utf-8",
        body,
    }
}

const ASSETS: [Asset; 9] = [
    Asset {
        name: "app.css",
        kind: "text/css; charset=utf-8",
        body: include_str!("../../assets/app.css"),
    },
    Asset {
        name: "icon.svg",
        kind: "image/svg+xml",
        body: include_str!("../../assets/icon.svg"),
    },
    script("app.js", include_str!("../../assets/app.js")),
    script(
        "deployments.js",
        include_str!("../../assets/deployments.js"),
    ),
    script("log.js", include_str!("../../assets/log.js")),
    script("people.js", include_str!("../../assets/people.js")),
    script("apps.js", include_str!("../../assets/apps.js")),
    script(
        "environments.js",
        include_str!("../../assets/environments.js"),
    ),
    script("webhooks.js", include_str!("../../assets/webhooks.js")),
];

fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}

/// A short hash of an asset's content.
fn version(asset: &Asset) -> &'static str {
    static VERSIONS: OnceLock<Vec<String>> = OnceLock::new();
    let versions = VERSIONS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let digest = Sha256::digest(asset.body.as_bytes());
                digest[..6].iter().map(|b| format!("{b:02x}")).collect()
            })
            .collect()
    });
    let index = ASSETS
        .iter()
        .position(|other| other.name == asset.name)
        .unwrap_or(0);
    &versions[index]
}

/// The URL of an asset, with its version (`/assets/app.css?v=...`).
pub fn url(name: &str) -> String {
    match find(name) {
        Some(asset) => format!("/assets/{name}?v={}", version(asset)),
        None => format!("/assets/{name}"),
    }
}

/// `GET /favicon.ico`, which browsers ask every site for: the icon.
pub async fn favicon(headers: HeaderMap) -> Response {
    serve(Path("icon.svg".into()), headers).await
}

/// `GET /assets/{name}`.
pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = find(&name) else {
        let mut response = Response::new(Body::from("no such asset\n"));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    };
    let etag = format!("\"{}\"", version(asset));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|seen| seen.as_bytes() == etag.as_bytes());
    let mut response = if fresh {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        Response::new(Body::from(asset.body))
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.kind));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}
