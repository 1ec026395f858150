//! Tests of manifest parsing and validation.

use super::*;

fn errors(text: &str) -> Vec<String> {
    match Manifest::parse(text) {
        Ok(manifest) => panic!("expected errors, got {manifest:?}"),
        Err(err) => err
            .issues
            .iter()
            .map(|issue| format!("{}: {}", issue.path, issue.message))
            .collect(),
    }
}

fn check(text: &str, expected: &[&str]) {
    let found = errors(text);
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for (found, expected) in found.iter().zip(expected) {
        assert!(
            found.starts_with(expected),
            "{found} does not start with {expected}"
        );
    }
}

#[test]
fn parses_a_full_manifest() {
    let manifest = Manifest::parse(
        r#"
app = "hello"
environment = "production"
version = "1.4.2"
[target]
labels = { role = "web" }
max_parallel = 2
max_failures = 1
[setup]
run = ["./install.sh", "echo done"]
timeout = "2m"
[stop]
run = ["./drain.sh"]
"#,
    )
    .expect("valid");
    assert_eq!(manifest.app, "hello");
    assert_eq!(manifest.environment, "production");
    assert_eq!(manifest.version.as_deref(), Some("1.4.2"));
    assert_eq!(
        manifest.target.labels.get("role").map(String::as_str),
        Some("web")
    );
    assert_eq!(manifest.target.max_parallel, Some(2));
    assert_eq!(manifest.target.max_failures, 1);
    let setup = manifest.setup.expect("setup");
    assert_eq!(setup.run.len(), 2);
    assert_eq!(setup.timeout, Duration::from_secs(120));
    assert_eq!(manifest.stop.expect("stop").timeout, DEFAULT_SCRIPT_TIMEOUT);
}

#[test]
fn defaults_environment() {
    let manifest = Manifest::parse("app = \"a\"\n[target]\nhosts = [\"h1\"]\n").expect("valid");
    assert_eq!(manifest.environment, "default");
    assert_eq!(manifest.target.max_parallel, None);
}

#[test]
fn reports_every_error_with_its_path() {
    check(
        r#"
app = "Hello World"
colour = "blue"
[target]
max_parallel = 0
labels = { role = 3 }
[setup]
run = ["ok", ""]
timeout = "soon"
"#,
        &[
            "colour: is not a known key",
            "app: `Hello World` must be",
            "target.labels.role: must be a string",
            "target.max_parallel: must be at least 1",
            "setup.run[1]: is an empty command",
            "setup.timeout: `soon` is not a duration",
        ],
    );
}

#[test]
fn requires_app_and_target() {
    check("", &["app: is required", "target: is required"]);
    check("app = \"x\"\n[target]\n", &["target: names no hosts"]);
}

#[test]
fn build_sections_make_an_image_or_an_artifact() {
    let head = "app = \"x\"\n[target]\nhosts=[\"a\"]\n";
    let image = Manifest::parse(&format!(
        "{head}[build]\nlabels = {{ role = \"build\" }}\ndockerfile = \"Dockerfile\"\ntarget = \"prod\"\nargs = {{ MODE = \"fast\" }}\n[container]\nport = 80\n"
    ))
    .expect("valid");
    let build = image.build.expect("build");
    assert!(build.makes_image());
    assert_eq!(build.timeout, DEFAULT_BUILD_TIMEOUT);
    assert_eq!(image.container.expect("container").image, "");
    let artifact = Manifest::parse(&format!(
        "{head}[build]\nlabels = {{ role = \"build\" }}\nrun = [\"make dist\"]\nartifact = \"dist/app.tgz\"\ntimeout = \"10m\"\n"
    ))
    .expect("valid");
    assert_eq!(
        artifact.build.expect("build").kind,
        BuildKind::Artifact {
            run: vec!["make dist".into()],
            artifact: "dist/app.tgz".into()
        }
    );
    check(
        &format!("{head}[build]\nlabels = {{}}\n"),
        &["build.labels: is empty", "build: says nothing to build"],
    );
    check(
        &format!(
            "{head}[build]\nlabels = {{ r = \"b\" }}\ndockerfile = \"../Dockerfile\"\n[container]\nimage = \"x:1\"\n"
        ),
        &[
            "build.dockerfile: `../Dockerfile` leaves the bundle",
            "container.image: is made by [build]",
        ],
    );
    check(
        &format!("{head}[build]\nlabels = {{ r = \"b\" }}\nrun = [\"make\"]\n"),
        &["build.artifact: is required with run"],
    );
    check(
        &format!("{head}[build]\nlabels = {{ r = \"b\" }}\ndockerfile = \"Dockerfile\"\n"),
        &["build.dockerfile: makes an image, but there is no [container]"],
    );
}

#[test]
fn reports_syntax_errors_with_a_line() {
    let found = errors("app = \"x\"\n[target\n");
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("(syntax)"), "{found:?}");
    assert!(found[0].contains("line 2"), "{found:?}");
}

#[test]
fn bounds_timeouts_and_versions() {
    check(
        "app = \"x\"\nversion = \"a b\"\n[target]\nhosts=[\"a\"]\n[setup]\nrun=[\"x\"]\ntimeout=\"48h\"\n",
        &[
            "version: `a b` must be",
            "setup.timeout: must be between 1s and 24h",
        ],
    );
    assert!(check_environment("prod").is_ok());
    assert!(check_environment("Prod").is_err());
}

#[test]
fn parses_a_container_section() {
    let manifest = Manifest::parse(
        r#"
app = "web"
[target]
hosts = ["h"]
[container]
image = "web:1.0"
port = 8080
env = { LOG = "info", WORKERS = 4 }
volumes = ["/srv/web:/data:ro"]
command = ["/bin/web", "--port", "8080"]
memory = "256m"
cpus = 0.5
"#,
    )
    .expect("valid");
    let container = manifest.container.expect("container");
    assert_eq!(container.image, "web:1.0");
    assert_eq!(container.port, Some(8080));
    assert_eq!(container.env.get("WORKERS").map(String::as_str), Some("4"));
    assert_eq!(container.memory_bytes, Some(256 << 20));
    assert_eq!(container.nano_cpus, Some(500_000_000));
}

#[test]
fn the_pull_policy_follows_moving_tags_unless_set() {
    let policy = |image: &str, pull: &str| {
        let pull = if pull.is_empty() {
            String::new()
        } else {
            format!("pull = \"{pull}\"\n")
        };
        let text = format!(
            "app = \"w\"\n[target]\nhosts = [\"h\"]\n[container]\nimage = \"{image}\"\n{pull}"
        );
        Manifest::parse(&text)
            .expect("valid")
            .container
            .expect("container")
            .pull_policy()
    };
    assert_eq!(policy("web", ""), PullPolicy::Always);
    assert_eq!(policy("web:latest", ""), PullPolicy::Always);
    assert_eq!(
        policy("registry.example.com:5000/team/web", ""),
        PullPolicy::Always
    );
    assert_eq!(
        policy("registry.example.com:5000/team/web:1.2", ""),
        PullPolicy::Missing
    );
    assert_eq!(
        policy(&format!("web@sha256:{}", "a".repeat(64)), ""),
        PullPolicy::Missing
    );
    assert_eq!(policy("web:latest", "missing"), PullPolicy::Missing);
    assert_eq!(policy("web:1.2", "always"), PullPolicy::Always);
    assert_eq!(policy("web:1.2", "never"), PullPolicy::Never);
    check(
        "app = \"w\"\n[target]\nhosts = [\"h\"]\n[container]\nimage = \"w:1\"\npull = \"sometimes\"\n",
        &["container.pull: is `sometimes`; use \"missing\""],
    );
}

#[test]
fn the_update_order_follows_a_fixed_host_port_unless_set() {
    let order = |extra: &str| {
        let text = format!(
            "app = \"w\"\n[target]\nhosts = [\"h\"]\n[container]\nimage = \"w:1\"\nport = 80\n{extra}"
        );
        Manifest::parse(&text)
            .expect("valid")
            .container
            .expect("container")
            .update_order()
    };
    assert_eq!(order(""), UpdateOrder::StartFirst);
    assert_eq!(order("host_port = 18080\n"), UpdateOrder::StopFirst);
    assert_eq!(order("update = \"stop-first\"\n"), UpdateOrder::StopFirst);
    assert_eq!(
        order("host_port = 18080\nupdate = \"stop-first\"\n"),
        UpdateOrder::StopFirst
    );
    check(
        "app = \"w\"\n[target]\nhosts = [\"h\"]\n[container]\nimage = \"w:1\"\nport = 80\nhost_port = 18080\nupdate = \"start-first\"\n",
        &["container.update: is \"start-first\", but host_port = 18080 is fixed"],
    );
    check(
        "app = \"w\"\n[target]\nhosts = [\"h\"]\n[container]\nimage = \"w:1\"\nupdate = \"rolling\"\n",
        &["container.update: is `rolling`; use \"start-first\""],
    );
}

#[test]
fn reports_container_mistakes() {
    check(
        "app = \"w\"\n[target]\nhosts = [\"h\"]\n[container]\nhost_port = 70000\nenv = { \"1BAD\" = \"x\" }\ncpus = 0\n",
        &[
            "container.image: is required",
            "container.host_port: must be a port number",
            "container.env.1BAD: `1BAD` is not a variable name",
            "container.cpus: must be between",
        ],
    );
}

#[test]
fn parses_health_checks() {
    let base = "app = \"w\"\n[target]\nhosts = [\"h\"]\n[container]\nimage = \"w:1\"\nport = 80\n";
    let manifest = Manifest::parse(&format!("{base}[health]\nhttp = \"/healthz\"\ninterval = \"200ms\"\ntimeout = \"5s\"\nstart_period = \"1s\"\n")).expect("valid");
    let health = manifest.health.expect("health");
    assert_eq!(health.probe, Probe::Http("/healthz".into()));
    assert_eq!(
        (health.interval, health.timeout, health.start_period),
        (
            Duration::from_millis(200),
            Duration::from_secs(5),
            Duration::from_secs(1)
        )
    );
    let tcp = Manifest::parse(&format!("{base}[health]\ntcp = true\n")).expect("valid");
    assert_eq!(
        tcp.health.expect("health").timeout,
        super::health::DEFAULT_TIMEOUT
    );
    let run = Manifest::parse(&format!("{base}[health]\nrun = [\"./check.sh\"]\n")).expect("valid");
    assert_eq!(
        run.health.expect("health").probe,
        Probe::Run(vec!["./check.sh".into()])
    );
}

#[test]
fn reports_health_mistakes() {
    let base = "app = \"w\"\n[target]\nhosts = [\"h\"]\n";
    check(
        &format!("{base}[health]\ntcp = true\n"),
        &["health: checks a container"],
    );
    check(
        &format!("{base}[container]\nimage = \"w:1\"\n[health]\nhttp = \"healthz\"\n"),
        &["health.http: `healthz` must be a path"],
    );
    check(
        &format!("{base}[container]\nimage = \"w:1\"\n[health]\ntcp = true\ninterval = \"1ms\"\n"),
        &[
            "health: http and tcp checks need container.port",
            "health.interval: must be between",
        ],
    );
    check(
        &format!("{base}[container]\nimage = \"w:1\"\n[health]\n"),
        &["health: needs exactly one check"],
    );
}

#[test]
fn parses_and_checks_proxy_sections() {
    let base = "app = \"w\"\n[target]\nhosts = [\"h\"]\n[container]\nimage = \"w:1\"\nport = 80\n";
    let manifest = Manifest::parse(&format!(
        "{base}[proxy]\ndomain = \"Web.Example.com\"\ntls = \"off\"\n"
    ))
    .expect("valid");
    assert_eq!(
        manifest.proxy,
        Some(Proxy {
            domain: "web.example.com".into(),
            tls: "off".into()
        })
    );
    let default_tls =
        Manifest::parse(&format!("{base}[proxy]\ndomain = \"a.b\"\n")).expect("valid");
    assert_eq!(default_tls.proxy.expect("proxy").tls, "auto");
    check(
        &format!("{base}[proxy]\ndomain = \"bad domain\"\ntls = \"maybe\"\n"),
        &["proxy.domain: `bad domain`", "proxy.tls: `maybe` must be"],
    );
    check(
        "app = \"w\"\n[target]\nhosts = [\"h\"]\n[proxy]\ndomain = \"a.b\"\n",
        &["proxy: routes to a container"],
    );
}

#[test]
fn the_deployment_timeout_has_a_default_and_bounds() {
    let base = "app = \"a\"\n[target]\nhosts = [\"h\"]\n";
    let default = Manifest::parse(base).expect("valid");
    assert_eq!(default.timeout, DEFAULT_DEPLOYMENT_TIMEOUT);
    let set = Manifest::parse(&format!("timeout = \"90s\"\n{base}")).expect("valid");
    assert_eq!(set.timeout, Duration::from_secs(90));
    check(
        &format!("timeout = \"0s\"\n{base}"),
        &["timeout: must be between 1s and 24h"],
    );
    check(
        &format!("timeout = 5\n{base}"),
        &["timeout: must be a string"],
    );
}

#[test]
fn reads_the_env_table_and_refuses_bad_names() {
    let manifest = Manifest::parse(
        "app = \"a\"\n[target]\nhosts = [\"h\"]\n[env]\nGREETING = \"hi\"\nCOUNT = 3\nDEBUG = true\n",
    )
    .expect("valid");
    let env: Vec<(&str, &str)> = manifest
        .env
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    assert_eq!(env, [("COUNT", "3"), ("DEBUG", "true"), ("GREETING", "hi")]);
    let err = Manifest::parse(
        "app = \"a\"\n[target]\nhosts = [\"h\"]\n[env]\nBERTH_APP = \"x\"\n\"1X\" = \"y\"\nLIST = [1]\n",
    )
    .expect_err("invalid");
    let said = err.to_string();
    for expected in ["env.BERTH_APP", "env.1X", "env.LIST: must be a string"] {
        assert!(said.contains(expected), "{expected} in {said}");
    }
}
