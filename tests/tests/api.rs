//! HTTP API behaviour against a real server process and PostgreSQL.

use serde_json::{json, Value};
use signet_tests::metadata::*;
use signet_tests::{fresh_database, ServerProcess};

async fn server() -> (ServerProcess, Client) {
    let db = fresh_database().await.expect("test database");
    let server = ServerProcess::start(&db, &[]).expect("server");
    let client = Client::new(&server.base_url);
    (server, client)
}

#[tokio::test]
async fn ping_health_and_metrics() {
    let (server, client) = server().await;
    let ping = client.http.get(server.url("/v2/")).send().await.unwrap();
    assert_eq!(ping.status(), 200);
    assert_eq!(ping.json::<Value>().await.unwrap(), json!({}));
    assert_eq!(client.http.get(server.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(client.http.get(server.url("/readyz")).send().await.unwrap().status(), 200);
    let metrics = client.http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("signet_http_requests_total"), "{metrics}");
    assert!(metrics.contains("signet_database_up 1"), "{metrics}");
}

#[tokio::test]
async fn invalid_gun_gets_400_with_rule() {
    let (server, client) = server().await;
    for gun in ["Team/App", "team//app", "team/app-", "reg.example.com:99999/app"] {
        let response = client.http.get(server.tuf_url(gun, "root.json")).send().await.unwrap();
        assert_eq!(response.status(), 400, "{gun}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "INVALID_GUN");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("lowercase path components"));
    }
    let long = format!("team/{}", "a".repeat(300));
    assert_eq!(client.http.get(server.tuf_url(&long, "root.json")).send().await.unwrap().status(), 400);
}

#[tokio::test]
async fn unknown_repository_role_and_version_get_404() {
    let (_server, client) = server().await;
    assert_eq!(client.get("team/none", "root.json").await.status(), 404);
    let repo = Repo::init(&client, "team/app").await;
    assert_eq!(client.get(&repo.gun, "releases.json").await.status(), 404);
    assert_eq!(client.get(&repo.gun, "7.root.json").await.status(), 404);
    assert_eq!(client.get(&repo.gun, &format!("targets.{}.json", "0".repeat(64))).await.status(), 404);
    assert_eq!(client.get(&repo.gun, "bad name.json").await.status(), 400);
    assert_eq!(client.get(&repo.gun, "root.xml").await.status(), 404);
}

#[tokio::test]
async fn server_key_is_stable_and_exact() {
    let (_server, client) = server().await;
    let first = client.server_key("team/app", "timestamp").await;
    let second = client.server_key("team/app", "timestamp").await;
    assert_eq!(first, second, "repeated calls must return the same pending key");
    let object = first.as_object().unwrap();
    let mut fields: Vec<&str> = object.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["keytype", "keyval", "scheme"]);
    assert_eq!(first["keyval"].as_object().unwrap().len(), 1);
    assert_eq!(first["keytype"], "ed25519");

    let snapshot = client.server_key("team/app", "snapshot").await;
    assert_ne!(first, snapshot);
    assert_eq!(client.get("team/app", "targets.key").await.status(), 400);
}

#[tokio::test]
async fn metadata_served_by_role_version_and_hash() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "registry.example.com:5000/team/app").await;
    let (status, body) = client.upload(&repo.gun, &[("targets", repo.targets_bytes(2, &[("latest", NGINX_1_13_9, 1570)]))]).await;
    assert_eq!(status, 200, "{body}");

    let current = client.get(&repo.gun, "targets.json").await;
    assert_eq!(current.headers()["content-type"], "application/json");
    let cache_control = current.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cache_control.contains("max-age=10"), "{cache_control}");
    let current = current.bytes().await.unwrap();

    let by_version = client.get(&repo.gun, "2.targets.json").await;
    assert!(by_version.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    assert_eq!(by_version.bytes().await.unwrap(), current);

    let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &current));
    let by_hash = client.get(&repo.gun, &format!("targets.{sha}.json")).await;
    assert_eq!(by_hash.status(), 200);
    assert_eq!(by_hash.bytes().await.unwrap(), current);

    let old = client.get(&repo.gun, "1.targets.json").await.bytes().await.unwrap();
    assert_ne!(old, current);

    // The snapshot the server signed describes the stored targets exactly.
    let snapshot: Value = client.get(&repo.gun, "snapshot.json").await.json().await.unwrap();
    let entry = &snapshot["signed"]["meta"]["targets.json"];
    assert_eq!(entry["version"], 2);
    assert_eq!(entry["length"], current.len());
    assert_eq!(entry["hashes"]["sha256"], sha);
    let expires = snapshot["signed"]["expires"].as_str().unwrap();
    assert_eq!(expires.len(), 20, "no fractional seconds: {expires}");
}

#[tokio::test]
async fn conditional_get_and_gzip() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;
    let response = client.get(&repo.gun, "root.json").await;
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let body = response.bytes().await.unwrap();

    let not_modified = client.http.get(client.tuf_url(&repo.gun, "root.json")).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(not_modified.status(), 304);

    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let gzipped = raw.get(client.tuf_url(&repo.gun, "1.root.json")).header("Accept-Encoding", "gzip").send().await.unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    // reqwest's own client decodes gzip transparently and must see the stored bytes.
    let decoded = client.http.get(client.tuf_url(&repo.gun, "1.root.json")).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(decoded, body);
}

#[tokio::test]
async fn malformed_uploads_get_400() {
    let (server, client) = server().await;
    let url = server.tuf_url("team/app", "");
    let plain = client.http.post(&url).body("not multipart").send().await.unwrap();
    assert_eq!(plain.status(), 400);
    let body: Value = plain.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "MALFORMED_UPLOAD");

    let broken = client
        .http
        .post(&url)
        .header("Content-Type", "multipart/form-data; boundary=xyz")
        .body("--xyz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"root\"\r\n\r\n{trunc")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 400);

    let repo = Repo::new(&client, "team/app").await;
    let (status, body) = client.upload(&repo.gun, &[("root", b"{not json".to_vec())]).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["code"], "MALFORMED_JSON");
    let (status, body) = client.upload(&repo.gun, &[("../etc", repo.root_bytes(1))]).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["code"], "INVALID_ROLE");

    let form = reqwest::multipart::Form::new().part("files", reqwest::multipart::Part::bytes(repo.root_bytes(1)));
    let no_name = client.http.post(&url).multipart(form).send().await.unwrap();
    assert_eq!(no_name.status(), 400);
    let body: Value = no_name.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "NO_FILENAME");
}

#[tokio::test]
async fn delete_removes_metadata_and_keys() {
    let (server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;
    let old_key = repo.timestamp_key.clone();
    let response = client.http.delete(server.tuf_url(&repo.gun, "")).send().await.unwrap();
    assert_eq!(response.status(), 200);

    assert_eq!(client.get(&repo.gun, "root.json").await.status(), 404);
    assert_eq!(client.get(&repo.gun, "1.targets.json").await.status(), 404);
    let new_key = client.server_key(&repo.gun, "timestamp").await;
    assert_ne!(old_key, new_key, "the retired key must not come back");
    assert_eq!(client.http.delete(server.tuf_url("team/none", "")).send().await.unwrap().status(), 404);

    let feed: Value = client.http.get(server.url("/v2/team/app/_trust/changefeed")).send().await.unwrap().json().await.unwrap();
    let categories: Vec<&str> = feed["records"].as_array().unwrap().iter().map(|r| r["category"].as_str().unwrap()).collect();
    assert_eq!(categories, ["update", "deletion"]);
}

#[tokio::test]
async fn changefeed_pages() {
    let (server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;
    for version in 2..=4 {
        let (status, _) = client.upload(&repo.gun, &[("targets", repo.targets_bytes(version, &[]))]).await;
        assert_eq!(status, 200);
    }
    Repo::init(&client, "team/other").await;

    let page: Value = client.http.get(server.url("/v2/team/app/_trust/changefeed?records=2")).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["count"], 2);
    let next = page["next_change_id"].as_i64().unwrap();
    let rest: Value = client
        .http
        .get(server.url(&format!("/v2/team/app/_trust/changefeed?change_id={next}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let versions: Vec<i64> = rest["records"].as_array().unwrap().iter().map(|r| r["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [3, 4]);

    let global: Value = client.http.get(server.url("/v2/_trust/changefeed")).send().await.unwrap().json().await.unwrap();
    assert_eq!(global["count"], 5);
    for bad in ["records=0", "records=abc", "change_id=-1", "records=5000"] {
        let response = client.http.get(server.url(&format!("/v2/_trust/changefeed?{bad}"))).send().await.unwrap();
        assert_eq!(response.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn concurrent_publishes_one_wins() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;
    let mut uploads = Vec::new();
    for i in 0..16 {
        let client = client.clone();
        let gun = repo.gun.clone();
        let tag = format!("tag-{i}");
        let bytes = repo.targets_bytes(2, &[(tag.as_str(), NGINX_1_13_9, 1570)]);
        uploads.push(tokio::spawn(async move { client.upload(&gun, &[("targets", bytes)]).await }));
    }
    let mut statuses = Vec::new();
    for upload in uploads {
        statuses.push(upload.await.unwrap().0);
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let conflict = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!(ok, 1, "statuses: {statuses:?}");
    assert_eq!(conflict, 15, "statuses: {statuses:?}");

    // The stored snapshot describes the stored targets.
    let targets = client.get(&repo.gun, "targets.json").await.bytes().await.unwrap();
    let snapshot: Value = client.get(&repo.gun, "snapshot.json").await.json().await.unwrap();
    let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &targets));
    assert_eq!(snapshot["signed"]["meta"]["targets.json"]["hashes"]["sha256"], sha);
    assert_eq!(client.version(&repo.gun, "timestamp").await, 2);
}
