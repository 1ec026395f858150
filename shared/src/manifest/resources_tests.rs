//! `[resources.NAME]`: what is read, and every mistake reported at once.

use super::{DEFAULT_SNAPSHOT_KEEP, Manifest, Probe, start_order};

const BASE: &str =
    "app = \"notes\"\n[target]\nhosts = [\"a\"]\n[container]\nimage = \"notes:1\"\nport = 8080\n";

fn parse(extra: &str) -> Result<Manifest, Vec<String>> {
    Manifest::parse(&format!("{BASE}{extra}")).map_err(|err| {
        err.issues
            .into_iter()
            .map(|issue| format!("{}: {}", issue.path, issue.message))
            .collect()
    })
}

#[test]
fn a_complete_resource_is_read() {
    let manifest = parse(
        r#"
[resources.db]
image = "postgres:16"
command = ["postgres", "-c", "fsync=on"]
port = 5432
host_port = 15432
volumes = ["data:/var/lib/postgresql/data", "/srv/conf:/etc/conf:ro"]
env = { POSTGRES_DB = "notes" }
secrets = ["POSTGRES_PASSWORD"]
memory = "256m"
cpus = 0.5
snapshot = true
snapshot_keep = 3
labels = { disk = "ssd" }
[resources.db.health]
run = ["pg_isready -U postgres"]
timeout = "30s"
[resources.cache]
image = "redis:7"
port = 6379
after = ["db"]
[resources.cache.health]
tcp = true
"#,
    )
    .expect("valid");
    let db = &manifest.resources["db"];
    assert_eq!(db.container.image, "postgres:16");
    assert_eq!(db.container.port, Some(5432));
    assert_eq!(db.container.host_port, Some(15432));
    assert_eq!(db.container.volumes.len(), 2);
    assert_eq!(db.container.memory_bytes, Some(256 * 1024 * 1024));
    assert_eq!(db.secrets, ["POSTGRES_PASSWORD"]);
    assert!(db.snapshot);
    assert_eq!(db.snapshot_keep, 3);
    assert_eq!(db.labels.get("disk").map(String::as_str), Some("ssd"));
    assert!(matches!(
        db.health.as_ref().map(|health| &health.probe),
        Some(Probe::Run(_))
    ));
    let cache = &manifest.resources["cache"];
    assert_eq!(cache.snapshot_keep, DEFAULT_SNAPSHOT_KEEP);
    assert_eq!(cache.after, ["db"]);
    assert_eq!(start_order(&manifest.resources), ["db", "cache"]);
    let text = serde_json::to_string(&manifest).expect("json");
    let back: Manifest = serde_json::from_str(&text).expect("back");
    assert_eq!(
        back, manifest,
        "a deployment's stored manifest keeps its resources"
    );
}

#[test]
fn start_order_follows_after_then_names() {
    let manifest = parse(
        "[resources.web-cache]\nimage = \"c:1\"\nafter = [\"queue\"]\n[resources.queue]\nimage = \"q:1\"\nafter = [\"db\"]\n[resources.db]\nimage = \"d:1\"\n[resources.aux]\nimage = \"a:1\"\n",
    )
    .expect("valid");
    assert_eq!(
        start_order(&manifest.resources),
        ["aux", "db", "queue", "web-cache"]
    );
}

#[test]
fn every_mistake_is_reported_with_its_path() {
    let issues = parse(
        r#"
[resources.Bad_Name]
image = "x:1"
[resources.db]
port = 5432
host_ip = "0.0.0.0"
snapshot_keep = 0
snapshot = "yes"
after = ["ghost"]
colour = "blue"
[resources.db.health]
tcp = true
[resources.cache]
image = "redis:7"
[resources.cache.health]
http = "/ping"
"#,
    )
    .expect_err("invalid");
    let has = |path: &str, words: &str| {
        assert!(
            issues
                .iter()
                .any(|issue| issue.starts_with(path) && issue.contains(words)),
            "no `{path}` issue with `{words}` in {issues:#?}"
        );
    };
    has("resources.Bad_Name", "must be 1 to 32 characters");
    has("resources.db.image", "is required");
    has("resources.db.host_ip", "needs host_port");
    has("resources.db.snapshot_keep", "at least 1");
    has("resources.db.snapshot", "true or false");
    has("resources.db.after", "`ghost`");
    has("resources.db.colour", "not a known key");
    has("resources.cache.health", "need port");
}

#[test]
fn a_circle_of_after_is_refused() {
    let issues = parse(
        "[resources.a]\nimage = \"a:1\"\nafter = [\"b\"]\n[resources.b]\nimage = \"b:1\"\nafter = [\"a\"]\n",
    )
    .expect_err("a cycle");
    assert!(
        issues.iter().any(|issue| issue.contains("a -> b -> a")),
        "{issues:?}"
    );
}
