//! Caddy routes through Caddy's admin API. Each app+environment has one
//! route, identified by an `@id` (`berth-<app>-<env>`), updated in place;
//! other routes are never touched. Routes with `tls = "off"` live in a
//! plain-HTTP server (`berth-http`), the others in `berth-https`, where
//! Caddy's automatic HTTPS applies (`internal` adds a policy using Caddy's
//! own CA for that domain).
//!
//! The agent remembers the routes it wants (`routes.json` in its data
//! directory) and puts back any that Caddy lost, e.g. after a restart
//! without its saved config.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod keep;

pub use keep::{Desired, MIGRATE_REQ, ensure_reload_handover, keep_routes};

/// Most bytes read from one admin API answer.
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// Where Caddy's admin API is and which ports berth's servers listen on.
#[derive(Clone, Debug)]
pub struct Caddy {
    /// `http://HOST:PORT` of the admin API.
    pub admin: String,
    pub http_port: u16,
    pub https_port: u16,
}

/// One route the agent wants Caddy to have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub id: String,
    pub domain: String,
    /// `host:port` of the container.
    pub upstream: String,
    /// `auto`, `internal` or `off`.
    pub tls: String,
    /// The deployment whose container the route points to.
    pub deployment_id: String,
    /// The app the route serves (empty in routes saved before it was kept).
    #[serde(default)]
    pub app: String,
}

impl Route {
    fn server(&self) -> &'static str {
        if self.tls == "off" {
            "berth-http"
        } else {
            "berth-https"
        }
    }

    fn json(&self) -> Value {
        json!({
            "@id": self.id,
            "match": [{ "host": [self.domain] }],
            "handle": [{ "handler": "reverse_proxy", "upstreams": [{ "dial": self.upstream }] }],
            "terminal": true,
        })
    }

    fn policy_id(&self) -> String {
        format!("{}-tls", self.id)
    }
}

/// The route id of an app in an environment.
pub fn route_id(app: &str, environment: &str) -> String {
    format!("berth-{app}-{environment}")
}

struct Answer {
    status: u16,
    body: String,
}

impl Caddy {
    fn authority(&self) -> Result<&str, String> {
        self.admin
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .ok_or_else(|| {
                format!(
                    "Caddy admin address `{}` must look like http://127.0.0.1:2019",
                    self.admin
                )
            })
    }

    /// One admin API call.
    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, String> {
        let authority = self.authority()?;
        let unreachable = |err: &dyn std::fmt::Display| {
            format!(
                "Caddy's admin API at {} is not reachable: {err}",
                self.admin
            )
        };
        let exchange = async {
            let answer = super::http::send(super::http::Request {
                authority,
                method,
                path,
                json: body.map(Value::to_string),
                user_agent: "berth-agent",
                max_body: MAX_ANSWER,
            })
            .await
            .map_err(|err| unreachable(&err))?;
            Ok::<_, String>(Answer {
                status: answer.status,
                body: answer.body,
            })
        };
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .map_err(|_| unreachable(&"no answer within 10s"))?
    }

    async fn expect_ok(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        let answer = self.call(method, path, body).await?;
        if (200..300).contains(&answer.status) {
            Ok(answer)
        } else {
            Err(format!(
                "Caddy refused {method} {path}: HTTP {} {}",
                answer.status,
                answer.body.trim()
            ))
        }
    }

    async fn get(&self, path: &str) -> Result<Option<Value>, String> {
        let answer = self.call("GET", path, None).await?;
        // Caddy answers a missing path with 400 "invalid traversal path" or
        // 404 "unknown object ID"; both mean "not there".
        let missing = ["unknown object ID", "invalid traversal path"]
            .iter()
            .any(|text| answer.body.contains(text));
        if answer.status == 404 || (answer.status >= 400 && missing) {
            return Ok(None);
        }
        if !(200..300).contains(&answer.status) {
            return Err(format!(
                "Caddy refused GET {path}: HTTP {} {}",
                answer.status,
                answer.body.trim()
            ));
        }
        let value: Value = serde_json::from_str(answer.body.trim()).unwrap_or(Value::Null);
        Ok((!value.is_null()).then_some(value))
    }

    /// Checks that the admin API answers.
    pub async fn ping(&self) -> Result<(), String> {
        self.expect_ok("GET", "/config/", None).await.map(|_| ())
    }

    fn server_json(&self, server: &str) -> Value {
        if server == "berth-http" {
            json!({ "listen": [format!(":{}", self.http_port)], "routes": [], "automatic_https": { "disable": true } })
        } else {
            json!({ "listen": [format!(":{}", self.https_port)], "routes": [] })
        }
    }

    /// Creates berth's server (and the parents it needs) when missing,
    /// without touching anything else in Caddy's config.
    async fn ensure_server(&self, server: &str) -> Result<(), String> {
        if self
            .get(&format!("/config/apps/http/servers/{server}"))
            .await?
            .is_some()
        {
            return Ok(());
        }
        let server_json = self.server_json(server);
        if self.get("/config/apps/http/servers").await?.is_some() {
            return self
                .expect_ok(
                    "PUT",
                    &format!("/config/apps/http/servers/{server}"),
                    Some(&server_json),
                )
                .await
                .map(|_| ());
        }
        // A new http app also gets berth's ports, so Caddy's automatic
        // HTTPS (and its HTTP->HTTPS redirects) use them rather than 80/443.
        let servers = json!({ "http_port": self.http_port, "https_port": self.https_port, "servers": { server: server_json } });
        if self.get("/config/apps").await?.is_some() {
            if self.get("/config/apps/http").await?.is_some() {
                return self
                    .expect_ok(
                        "PUT",
                        "/config/apps/http/servers",
                        Some(&json!({ server: self.server_json(server) })),
                    )
                    .await
                    .map(|_| ());
            }
            return self
                .expect_ok("PUT", "/config/apps/http", Some(&servers))
                .await
                .map(|_| ());
        }
        self.expect_ok("PUT", "/config/apps", Some(&json!({ "http": servers })))
            .await
            .map(|_| ())
    }

    /// Makes Caddy's route for `route` point where it says: replaced in
    /// place when it exists, appended otherwise.
    pub async fn apply(&self, route: &Route) -> Result<(), String> {
        self.ensure_server(route.server()).await?;
        if route.tls == "internal" {
            self.ensure_internal_tls(route).await?;
        }
        let path = format!("/id/{}", route.id);
        match self.get(&path).await? {
            Some(_) => self
                .expect_ok("PATCH", &path, Some(&route.json()))
                .await
                .map(|_| ()),
            None => self
                .expect_ok(
                    "POST",
                    &format!("/config/apps/http/servers/{}/routes", route.server()),
                    Some(&route.json()),
                )
                .await
                .map(|_| ()),
        }
    }

    async fn ensure_internal_tls(&self, route: &Route) -> Result<(), String> {
        // Caddy's own CA must not try to install itself into the host's
        // trust store.
        if self.get("/config/apps/pki").await?.is_none() {
            let pki = json!({ "certificate_authorities": { "local": { "install_trust": false } } });
            self.expect_ok("PUT", "/config/apps/pki", Some(&pki))
                .await?;
        }
        let policy = json!({ "@id": route.policy_id(), "subjects": [route.domain], "issuers": [{ "module": "internal" }] });
        let path = format!("/id/{}", route.policy_id());
        if self.get(&path).await?.is_some() {
            return self
                .expect_ok("PATCH", &path, Some(&policy))
                .await
                .map(|_| ());
        }
        // Caddy takes the first policy that matches a name, and a policy
        // without subjects (an operator's default issuer) matches every
        // name: berth's goes in front.
        if self
            .get("/config/apps/tls/automation/policies")
            .await?
            .is_some()
        {
            return self
                .expect_ok(
                    "PUT",
                    "/config/apps/tls/automation/policies/0",
                    Some(&policy),
                )
                .await
                .map(|_| ());
        }
        if self.get("/config/apps/tls").await?.is_some() {
            return self
                .expect_ok(
                    "PUT",
                    "/config/apps/tls/automation",
                    Some(&json!({ "policies": [policy] })),
                )
                .await
                .map(|_| ());
        }
        self.expect_ok(
            "PUT",
            "/config/apps/tls",
            Some(&json!({ "automation": { "policies": [policy] } })),
        )
        .await
        .map(|_| ())
    }

    /// True when Caddy has this route pointing at this upstream.
    pub async fn has(&self, route: &Route) -> Result<bool, String> {
        let Some(current) = self.get(&format!("/id/{}", route.id)).await? else {
            return Ok(false);
        };
        Ok(current["handle"][0]["upstreams"][0]["dial"] == route.upstream)
    }

    /// Removes a route (and its TLS policy); a missing one is fine.
    pub async fn remove(&self, id: &str) -> Result<(), String> {
        for path in [format!("/id/{id}"), format!("/id/{id}-tls")] {
            let answer = self.call("DELETE", &path, None).await?;
            let missing = ["unknown object ID", "invalid traversal path"]
                .iter()
                .any(|text| answer.body.contains(text));
            if !(200..300).contains(&answer.status) && answer.status != 404 && !missing {
                return Err(format!(
                    "Caddy refused DELETE {path}: HTTP {} {}",
                    answer.status,
                    answer.body.trim()
                ));
            }
        }
        Ok(())
    }
}
