//! Upload validation over HTTP: every rule has a case that is rejected with the right status
//! and a message naming the role and the rule. Each case would be accepted if its rule were
//! removed, because everything else in the upload is valid.

use serde_json::{json, Value};
use signet_core::signing::sign_metadata;
use signet_tests::metadata::*;
use signet_tests::{fresh_database, ServerProcess};

async fn server() -> (ServerProcess, Client) {
    let db = fresh_database().await.expect("test database");
    let server = ServerProcess::start(&db, &[]).expect("server");
    let client = Client::new(&server.base_url);
    (server, client)
}

fn message(body: &Value) -> String {
    body["errors"][0]["message"].as_str().unwrap_or_default().to_owned()
}

fn assert_rejected(status: u16, body: &Value, expected_status: u16, needle: &str) {
    assert_eq!(status, expected_status, "body: {body}");
    let message = message(body);
    assert!(message.contains(needle), "message {message:?} should contain {needle:?}");
}

#[tokio::test]
async fn accepts_valid_repository() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "example.com/team/app").await;
    assert_eq!(client.version(&repo.gun, "targets").await, 1);
    assert_eq!(client.version(&repo.gun, "snapshot").await, 1);
    assert_eq!(client.version(&repo.gun, "timestamp").await, 1);
}

#[tokio::test]
async fn rejects_wrong_type() {
    let (_server, client) = server().await;
    let repo = Repo::new(&client, "team/app").await;
    let mut targets = targets_signed(1, &expires_in_days(30), &[]);
    targets["_type"] = json!("snapshot");
    let (status, body) = client.upload(&repo.gun, &[("root", repo.root_bytes(1)), ("targets", sign(&targets, &[&repo.targets_key]))]).await;
    assert_rejected(status, &body, 400, "_type");
    assert!(message(&body).starts_with("targets"), "{body}");
}

#[tokio::test]
async fn rejects_unsupported_spec_version() {
    let (_server, client) = server().await;
    let repo = Repo::new(&client, "team/app").await;
    let mut root = repo.root(1);
    root["spec_version"] = json!("2.0.0");
    let (status, body) = client.upload(&repo.gun, &[("root", sign(&root, &[&repo.root_key]))]).await;
    assert_rejected(status, &body, 400, "spec_version");
}

#[tokio::test]
async fn rejects_unsigned_targets() {
    let (_server, client) = server().await;
    let repo = Repo::new(&client, "team/app").await;
    let targets = sign(&targets_signed(1, &expires_in_days(30), &[]), &[]);
    let (status, body) = client.upload(&repo.gun, &[("root", repo.root_bytes(1)), ("targets", targets)]).await;
    assert_rejected(status, &body, 400, "threshold");
}

#[tokio::test]
async fn repeated_signature_counts_once() {
    let (_server, client) = server().await;
    let repo = Repo::new(&client, "team/app").await;
    let second = ed25519();
    let root = root_signed(
        1,
        &expires_in_days(365),
        &RoleSpec::of(&[&repo.root_key], 1),
        &RoleSpec::of(&[&repo.targets_key, &second], 2),
        &RoleSpec::server(&repo.snapshot_key),
        &RoleSpec::server(&repo.timestamp_key),
    );
    // The same key signs twice, so two signatures but one key.
    let targets = sign(&targets_signed(1, &expires_in_days(30), &[]), &[&repo.targets_key, &repo.targets_key]);
    let root = sign(&root, &[&repo.root_key]);
    let (status, body) = client.upload(&repo.gun, &[("root", root.clone()), ("targets", targets)]).await;
    assert_rejected(status, &body, 400, "1 valid signature");

    let both = sign(&targets_signed(1, &expires_in_days(30), &[]), &[&repo.targets_key, &second]);
    let (status, body) = client.upload(&repo.gun, &[("root", root), ("targets", both)]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn key_under_two_key_ids_counts_once() {
    let (_server, client) = server().await;
    let repo = Repo::new(&client, "team/app").await;
    // A key object with an extra field has two valid ids: over the whole object, and over
    // keytype, scheme and keyval only (as python-tuf computes it).
    let mut extended = repo.targets_key.tuf_key().clone();
    extended["x-comment"] = json!("same key");
    let full_id = signet_core::keys::key_id(&extended).unwrap();
    let minimal_id = repo.targets_key.key_id().to_owned();
    let targets_role = RoleSpec { keys: vec![(full_id.clone(), extended.clone()), (minimal_id.clone(), extended)], threshold: 2 };
    let root = root_signed(
        1,
        &expires_in_days(365),
        &RoleSpec::of(&[&repo.root_key], 1),
        &targets_role,
        &RoleSpec::server(&repo.snapshot_key),
        &RoleSpec::server(&repo.timestamp_key),
    );
    let signed = targets_signed(1, &expires_in_days(30), &[]);
    let canonical = signet_core::canonical::to_canonical(&signed).unwrap();
    let sig = hex::encode(repo.targets_key.sign(&canonical).unwrap());
    let targets = serde_json::to_vec(&json!({"signed": signed, "signatures": [
        {"keyid": full_id, "sig": sig}, {"keyid": minimal_id, "sig": sig}
    ]}))
    .unwrap();
    let (status, body) = client.upload(&repo.gun, &[("root", sign(&root, &[&repo.root_key])), ("targets", targets)]).await;
    assert_rejected(status, &body, 400, "1 valid signature");
}

#[tokio::test]
async fn rejects_wrong_key_id() {
    let (_server, client) = server().await;
    let repo = Repo::new(&client, "team/app").await;
    let wrong = RoleSpec { keys: vec![("ab".repeat(32), repo.targets_key.tuf_key().clone())], threshold: 1 };
    let root = root_signed(
        1,
        &expires_in_days(365),
        &RoleSpec::of(&[&repo.root_key], 1),
        &wrong,
        &RoleSpec::server(&repo.snapshot_key),
        &RoleSpec::server(&repo.timestamp_key),
    );
    let (status, body) = client.upload(&repo.gun, &[("root", sign(&root, &[&repo.root_key]))]).await;
    assert_rejected(status, &body, 400, "is not the SHA-256");
}

#[tokio::test]
async fn accepts_python_tuf_key_id_for_extended_key() {
    let (_server, client) = server().await;
    let repo = Repo::new(&client, "team/app").await;
    let mut extended = repo.targets_key.tuf_key().clone();
    extended["keyid_hash_algorithms"] = json!(["sha256", "sha512"]);
    let role = RoleSpec { keys: vec![(repo.targets_key.key_id().to_owned(), extended)], threshold: 1 };
    let root = root_signed(
        1,
        &expires_in_days(365),
        &RoleSpec::of(&[&repo.root_key], 1),
        &role,
        &RoleSpec::server(&repo.snapshot_key),
        &RoleSpec::server(&repo.timestamp_key),
    );
    let targets = repo.targets_bytes(1, &[]);
    let (status, body) = client.upload(&repo.gun, &[("root", sign(&root, &[&repo.root_key])), ("targets", targets)]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn root_version_must_be_next() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;

    let (status, body) = client.upload(&repo.gun, &[("root", repo.root_bytes(3))]).await;
    assert_rejected(status, &body, 400, "skips versions");

    let (status, body) = client.upload(&repo.gun, &[("root", repo.root_bytes(1))]).await;
    assert_rejected(status, &body, 409, "not newer");
    assert_eq!(body["errors"][0]["detail"]["current_version"], 1, "{body}");

    let (status, body) = client.upload(&repo.gun, &[("root", repo.root_bytes(2))]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn targets_version_must_increase() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;
    let (status, body) = client.upload(&repo.gun, &[("targets", repo.targets_bytes(1, &[]))]).await;
    assert_rejected(status, &body, 409, "not newer");
    assert_eq!(body["errors"][0]["detail"]["current_version"], 1);
    assert_eq!(body["errors"][0]["detail"]["role"], "targets");
}

#[tokio::test]
async fn new_root_needs_old_root_keys() {
    let (_server, client) = server().await;
    let mut repo = Repo::init(&client, "team/app").await;
    let old_key = std::mem::replace(&mut repo.root_key, ed25519());

    // Signed only by the new root key: the old root's threshold is not met.
    let (status, body) = client.upload(&repo.gun, &[("root", repo.root_bytes(2))]).await;
    assert_rejected(status, &body, 400, "root version 1 keys");

    // Signed only by the old key: the new root's own threshold is not met.
    let (status, body) = client.upload(&repo.gun, &[("root", sign(&repo.root(2), &[&old_key]))]).await;
    assert_rejected(status, &body, 400, "root version 2 keys");

    let (status, body) = client.upload(&repo.gun, &[("root", sign(&repo.root(2), &[&old_key, &repo.root_key]))]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn rejects_expired_metadata() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;
    let expired = sign(&targets_signed(2, &format_time(chrono::Utc::now() - chrono::Duration::hours(1)), &[]), &[&repo.targets_key]);
    let (status, body) = client.upload(&repo.gun, &[("targets", expired)]).await;
    assert_rejected(status, &body, 400, "expired");
}

#[tokio::test]
async fn rejects_fractional_expires() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;
    let targets = sign(&targets_signed(2, "2030-01-01T00:00:00.5Z", &[]), &[&repo.targets_key]);
    let (status, body) = client.upload(&repo.gun, &[("targets", targets)]).await;
    assert_rejected(status, &body, 400, "YYYY-MM-DDTHH:MM:SSZ");
}

#[tokio::test]
async fn rejects_targets_signed_by_unlisted_key() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;
    let stranger = ed25519();
    let targets = sign(&targets_signed(2, &expires_in_days(30), &[]), &[&stranger]);
    let (status, body) = client.upload(&repo.gun, &[("targets", targets)]).await;
    assert_rejected(status, &body, 400, "0 valid signature");
}

/// Builds targets v`version` that delegates `releases/*` to `key`.
fn delegating_targets(version: u64, key: &signet_core::signing::SigningKey) -> Value {
    let mut targets = targets_signed(version, &expires_in_days(30), &[]);
    targets["delegations"] = json!({
        "keys": {key.key_id(): key.tuf_key()},
        "roles": [{"name": "releases", "keyids": [key.key_id()], "threshold": 1, "paths": ["releases/*"], "terminating": true}],
    });
    targets
}

#[tokio::test]
async fn delegated_role_needs_delegator_keys() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;
    let delegate = ed25519();
    let stranger = ed25519();
    let targets = sign(&delegating_targets(2, &delegate), &[&repo.targets_key]);
    let (status, body) = client.upload(&repo.gun, &[("targets", targets)]).await;
    assert_eq!(status, 200, "{body}");

    let releases = targets_signed(1, &expires_in_days(30), &[("releases/v1", NGINX_1_13_9, 10)]);
    let (status, body) = client.upload(&repo.gun, &[("releases", sign(&releases, &[&stranger]))]).await;
    assert_rejected(status, &body, 400, "releases");
    assert!(message(&body).contains("targets delegation keys"), "{body}");

    let (status, body) = client.upload(&repo.gun, &[("releases", sign(&releases, &[&delegate]))]).await;
    assert_eq!(status, 200, "{body}");

    // Served by version, with the role name percent-encoded or not.
    assert_eq!(client.get(&repo.gun, "1.releases.json").await.status(), 200);
    let snapshot: Value = client.get(&repo.gun, "snapshot.json").await.json().await.unwrap();
    assert_eq!(snapshot["signed"]["meta"]["releases.json"]["version"], 1);
}

#[tokio::test]
async fn delegated_target_outside_paths_rejected() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;
    let delegate = ed25519();
    let (status, _) = client.upload(&repo.gun, &[("targets", sign(&delegating_targets(2, &delegate), &[&repo.targets_key]))]).await;
    assert_eq!(status, 200);
    // `*` does not match `/`, so releases/a/b is outside releases/*.
    let releases = targets_signed(1, &expires_in_days(30), &[("releases/a/b", NGINX_1_13_9, 10)]);
    let (status, body) = client.upload(&repo.gun, &[("releases", sign(&releases, &[&delegate]))]).await;
    assert_rejected(status, &body, 400, "outside the paths");
}

#[tokio::test]
async fn undelegated_role_rejected() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;
    let releases = targets_signed(1, &expires_in_days(30), &[]);
    let (status, body) = client.upload(&repo.gun, &[("releases", sign(&releases, &[&repo.targets_key]))]).await;
    assert_rejected(status, &body, 400, "no stored or uploaded role delegates to it");
}

#[tokio::test]
async fn rejects_floats_and_duplicate_keys() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;

    let signed = targets_signed(2, &expires_in_days(30), &[]);
    let valid = String::from_utf8(repo.targets_bytes(2, &[])).unwrap();
    assert!(valid.contains("\"version\":2"));

    let float = valid.replacen("\"version\":2", "\"version\":2.0", 1);
    let (status, body) = client.upload(&repo.gun, &[("targets", float.into_bytes())]).await;
    assert_rejected(status, &body, 400, "integers only");

    let duplicate = valid.replacen("\"version\":2", "\"version\":2,\"version\":2", 1);
    let (status, body) = client.upload(&repo.gun, &[("targets", duplicate.into_bytes())]).await;
    assert_rejected(status, &body, 400, "duplicate object key");
    assert_eq!(body["errors"][0]["code"], "MALFORMED_JSON");

    // The undamaged file is accepted.
    let (status, body) = client.upload(&repo.gun, &[("targets", sign(&signed, &[&repo.targets_key]))]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn unknown_fields_are_kept_and_signed() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;
    let mut signed = targets_signed(2, &expires_in_days(30), &[("latest", NGINX_1_13_9, 1570)]);
    signed["x-publisher"] = json!({"team": "platform"});
    let bytes = sign(&signed, &[&repo.targets_key]);

    // Changing the unknown field after signing breaks the signature.
    let tampered = String::from_utf8(bytes.clone()).unwrap().replace("platform", "mallory");
    let (status, body) = client.upload(&repo.gun, &[("targets", tampered.into_bytes())]).await;
    assert_rejected(status, &body, 400, "threshold");

    let (status, body) = client.upload(&repo.gun, &[("targets", bytes.clone())]).await;
    assert_eq!(status, 200, "{body}");
    let served = client.get(&repo.gun, "2.targets.json").await.bytes().await.unwrap();
    assert_eq!(served.as_ref(), bytes.as_slice(), "served bytes must equal the uploaded bytes");
}

#[tokio::test]
async fn root_changing_targets_keys_needs_new_targets() {
    let (_server, client) = server().await;
    let mut repo = Repo::init(&client, "team/app").await;
    repo.targets_key = ed25519();

    let (status, body) = client.upload(&repo.gun, &[("root", repo.root_bytes(2))]).await;
    assert_rejected(status, &body, 400, "must be uploaded together with targets");

    let (status, body) = client.upload(&repo.gun, &[("root", repo.root_bytes(2)), ("targets", repo.targets_bytes(2, &[]))]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn rejects_timestamp_and_empty_uploads() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;
    // An empty form is rejected as an invalid multipart body or as an empty upload.
    let (status, body) = client.upload(&repo.gun, &[]).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = client.upload(&repo.gun, &[("timestamp", b"{}".to_vec())]).await;
    assert_rejected(status, &body, 400, "timestamp is signed by the server");
}

#[tokio::test]
async fn root_must_list_server_timestamp_key() {
    let (_server, client) = server().await;
    let repo = Repo::new(&client, "team/app").await;
    let other = ed25519();
    let root = root_signed(
        1,
        &expires_in_days(365),
        &RoleSpec::of(&[&repo.root_key], 1),
        &RoleSpec::of(&[&repo.targets_key], 1),
        &RoleSpec::server(&repo.snapshot_key),
        &RoleSpec::of(&[&other], 1),
    );
    let (status, body) = client.upload(&repo.gun, &[("root", sign(&root, &[&repo.root_key]))]).await;
    assert_rejected(status, &body, 400, "timestamp role must be signed by the server");
}

#[tokio::test]
async fn client_held_snapshot_is_checked() {
    let (_server, client) = server().await;
    let repo = Repo::new(&client, "team/app").await;
    let snapshot_key = ed25519();
    let root = root_signed(
        1,
        &expires_in_days(365),
        &RoleSpec::of(&[&repo.root_key], 1),
        &RoleSpec::of(&[&repo.targets_key], 1),
        &RoleSpec::of(&[&snapshot_key], 1),
        &RoleSpec::server(&repo.timestamp_key),
    );
    let root = sign(&root, &[&repo.root_key]);
    let targets = repo.targets_bytes(1, &[("1.13.9", NGINX_1_13_9, 1570)]);

    let (status, body) = client.upload(&repo.gun, &[("root", root.clone()), ("targets", targets.clone())]).await;
    assert_rejected(status, &body, 400, "must include a snapshot");

    let snapshot = |targets_version: u64| {
        let signed = json!({"_type": "snapshot", "spec_version": "1.0.31", "version": 1, "expires": expires_in_days(7),
            "meta": {"targets.json": {"version": targets_version}}});
        sign_metadata(&signed, &[&snapshot_key]).unwrap()
    };
    let (status, body) = client.upload(&repo.gun, &[("root", root.clone()), ("targets", targets.clone()), ("snapshot", snapshot(5))]).await;
    assert_rejected(status, &body, 400, "version 5 in meta");

    let (status, body) = client.upload(&repo.gun, &[("root", root), ("targets", targets), ("snapshot", snapshot(1))]).await;
    assert_eq!(status, 200, "{body}");
    let timestamp: Value = client.get(&repo.gun, "timestamp.json").await.json().await.unwrap();
    assert_eq!(timestamp["signed"]["meta"]["snapshot.json"]["version"], 1);
}

#[tokio::test]
async fn oversized_role_gets_413() {
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &["--max-role-size", "4096", "--max-request-size", "8192"]).unwrap();
    let client = Client::new(&server.base_url);
    let repo = Repo::new(&client, "team/app").await;
    let many: Vec<(String, String)> = (0..100).map(|i| (format!("tag-{i}"), "a".repeat(64))).collect();
    let entries: Vec<(&str, &str, u64)> = many.iter().map(|(n, d)| (n.as_str(), d.as_str(), 1)).collect();
    let (status, body) = client.upload(&repo.gun, &[("root", repo.root_bytes(1)), ("targets", repo.targets_bytes(1, &entries))]).await;
    assert_eq!(status, 413, "{body}");

    let huge = vec![b' '; 64 * 1024];
    let (status, _) = client.upload(&repo.gun, &[("root", huge)]).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn first_root_needs_targets() {
    let (_server, client) = server().await;
    let repo = Repo::new(&client, "team/app").await;
    let (status, body) = client.upload(&repo.gun, &[("root", repo.root_bytes(1))]).await;
    assert_rejected(status, &body, 400, "upload targets together with the first root");
}

#[tokio::test]
async fn delegated_role_with_slash_served_percent_encoded() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;
    let delegate = ed25519();
    let mut targets = targets_signed(2, &expires_in_days(30), &[]);
    targets["delegations"] = json!({
        "keys": {delegate.key_id(): delegate.tuf_key()},
        "roles": [{"name": "targets/releases", "keyids": [delegate.key_id()], "threshold": 1, "paths": ["*"], "terminating": false}],
    });
    let releases = sign(&targets_signed(1, &expires_in_days(30), &[("v1", NGINX_1_13_9, 10)]), &[&delegate]);
    let (status, body) =
        client.upload(&repo.gun, &[("targets", sign(&targets, &[&repo.targets_key])), ("targets/releases", releases.clone())]).await;
    assert_eq!(status, 200, "{body}");

    let encoded = client.get(&repo.gun, "1.targets%2Freleases.json").await;
    assert_eq!(encoded.status(), 200);
    assert_eq!(encoded.bytes().await.unwrap().as_ref(), releases.as_slice());
    assert_eq!(client.get(&repo.gun, "targets%2Freleases.json").await.status(), 200);
    assert_eq!(client.get(&repo.gun, "targets/releases.json").await.status(), 200);
}

#[tokio::test]
async fn rejects_defective_roots() {
    let (_server, client) = server().await;
    let repo = Repo::new(&client, "team/app").await;
    let targets = repo.targets_bytes(1, &[]);
    let unknown_id = "cd".repeat(32);

    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    let mut missing_role = repo.root(1);
    missing_role["roles"].as_object_mut().unwrap().remove("snapshot");
    cases.push(("missing role", missing_role, "does not define the snapshot role"));
    let mut zero = repo.root(1);
    zero["roles"]["targets"]["threshold"] = json!(0);
    cases.push(("zero threshold", zero, "threshold 0"));
    let mut unknown = repo.root(1);
    unknown["roles"]["targets"]["keyids"] = json!([unknown_id]);
    cases.push(("unknown key id", unknown, "not in \"keys\""));
    let mut duplicate = repo.root(1);
    duplicate["roles"]["targets"]["keyids"] = json!([repo.targets_key.key_id(), repo.targets_key.key_id()]);
    cases.push(("duplicate key id", duplicate, "more than once"));
    let mut expired = repo.root(1);
    expired["expires"] = json!(format_time(chrono::Utc::now() - chrono::Duration::days(1)));
    cases.push(("expired", expired, "expired"));
    let mut unsupported_key = repo.targets_key.tuf_key().clone();
    unsupported_key["scheme"] = json!("rsa-pkcs1v15-sha256");
    let unsupported_id = signet_core::keys::key_id(&unsupported_key).unwrap();
    let mut unsupported = repo.root(1);
    unsupported["keys"][&unsupported_id] = unsupported_key;
    unsupported["roles"]["targets"]["keyids"] = json!([unsupported_id]);
    cases.push(("unsupported scheme", unsupported, "unsupported key"));

    for (case, root, needle) in cases {
        let (status, body) = client.upload(&repo.gun, &[("root", sign(&root, &[&repo.root_key])), ("targets", targets.clone())]).await;
        assert_eq!(status, 400, "{case}: {body}");
        assert!(message(&body).contains(needle), "{case}: {body}");
    }
}

#[tokio::test]
async fn rejects_defective_targets() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;
    let delegate = ed25519();
    let role = |name: &str| json!({"name": name, "keyids": [delegate.key_id()], "threshold": 1, "paths": ["*"], "terminating": true});

    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    let mut no_sha256 = targets_signed(2, &expires_in_days(30), &[]);
    no_sha256["targets"]["latest"] = json!({"length": 10, "hashes": {"sha512": "ab".repeat(64)}});
    cases.push(("target without sha256", no_sha256, "no sha256 hash"));
    let delegating = |roles: Value| {
        let mut targets = targets_signed(2, &expires_in_days(30), &[]);
        targets["delegations"] = json!({"keys": {delegate.key_id(): delegate.tuf_key()}, "roles": roles});
        targets
    };
    cases.push(("duplicate delegation", delegating(json!([role("a"), role("a")])), "listed more than once"));
    cases.push(("delegation to top-level role", delegating(json!([role("snapshot")])), "not a top-level role"));
    let mut no_paths = role("a");
    no_paths.as_object_mut().unwrap().remove("paths");
    cases.push(("delegation without paths", delegating(json!([no_paths])), "needs \"paths\""));
    let mut succinct = targets_signed(2, &expires_in_days(30), &[]);
    succinct["delegations"] = json!({"keys": {}, "succinct_roles": {"keyids": [], "threshold": 1, "bit_length": 4, "name_prefix": "bin"}});
    cases.push(("succinct roles", succinct, "succinct_roles"));

    for (case, targets, needle) in cases {
        let (status, body) = client.upload(&repo.gun, &[("targets", sign(&targets, &[&repo.targets_key]))]).await;
        assert_eq!(status, 400, "{case}: {body}");
        assert!(message(&body).contains(needle), "{case}: {body}");
    }
}

#[tokio::test]
async fn rejects_duplicate_role_parts() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;
    let (status, body) = client.upload(&repo.gun, &[("targets", repo.targets_bytes(2, &[])), ("targets", repo.targets_bytes(3, &[]))]).await;
    assert_rejected(status, &body, 400, "more than once");
}

#[tokio::test]
async fn rejects_snapshot_when_server_signs_it() {
    let (_server, client) = server().await;
    let repo = Repo::init(&client, "team/app").await;
    let signed = json!({"_type": "snapshot", "spec_version": "1.0.31", "version": 9, "expires": expires_in_days(7),
        "meta": {"targets.json": {"version": 1}}});
    let (status, body) = client.upload(&repo.gun, &[("snapshot", sign(&signed, &[&repo.root_key]))]).await;
    assert_rejected(status, &body, 400, "this server signs snapshot");
}
