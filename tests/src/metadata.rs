//! Builders for signed TUF metadata and helpers that talk to a server, used by the tests.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};
use signet_core::signing::{sign_metadata, KeyAlgorithm, SigningKey};

/// `expires` value `days` from now, in TUF's `YYYY-MM-DDTHH:MM:SSZ` form.
pub fn expires_in_days(days: i64) -> String {
    format_time(Utc::now() + Duration::days(days))
}

pub fn format_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn ed25519() -> SigningKey {
    SigningKey::generate(KeyAlgorithm::Ed25519).expect("generate ed25519 key").0
}

pub fn ecdsa() -> SigningKey {
    SigningKey::generate(KeyAlgorithm::EcdsaP256).expect("generate ecdsa key").0
}

/// Role definition: (keys as (key id, key object), threshold).
pub struct RoleSpec {
    pub keys: Vec<(String, Value)>,
    pub threshold: u64,
}

impl RoleSpec {
    pub fn of(keys: &[&SigningKey], threshold: u64) -> RoleSpec {
        RoleSpec { keys: keys.iter().map(|k| (k.key_id().to_owned(), k.tuf_key().clone())).collect(), threshold }
    }

    /// Builds the definition of a server-held key as the `.key` endpoint returns it.
    pub fn server(key: &Value) -> RoleSpec {
        let id = signet_core::keys::key_id(key).expect("key id");
        RoleSpec { keys: vec![(id, key.clone())], threshold: 1 }
    }
}

/// `signed` of a root with consistent snapshots.
pub fn root_signed(version: u64, expires: &str, root: &RoleSpec, targets: &RoleSpec, snapshot: &RoleSpec, timestamp: &RoleSpec) -> Value {
    let mut keys = Map::new();
    let mut roles = Map::new();
    for (name, spec) in [("root", root), ("targets", targets), ("snapshot", snapshot), ("timestamp", timestamp)] {
        for (id, key) in &spec.keys {
            keys.insert(id.clone(), key.clone());
        }
        let ids: Vec<&String> = spec.keys.iter().map(|(id, _)| id).collect();
        roles.insert(name.to_owned(), json!({"keyids": ids, "threshold": spec.threshold}));
    }
    json!({
        "_type": "root",
        "spec_version": "1.0.31",
        "consistent_snapshot": true,
        "version": version,
        "expires": expires,
        "keys": keys,
        "roles": roles,
    })
}

/// `signed` of a targets role mapping tags to (sha256 hex, length).
pub fn targets_signed(version: u64, expires: &str, targets: &[(&str, &str, u64)]) -> Value {
    let mut entries = Map::new();
    for (name, sha256, length) in targets {
        entries.insert(
            (*name).to_owned(),
            json!({"length": length, "hashes": {"sha256": sha256}, "custom": {"mediaType": "application/vnd.oci.image.manifest.v1+json"}}),
        );
    }
    json!({"_type": "targets", "spec_version": "1.0.31", "version": version, "expires": expires, "targets": entries})
}

pub fn sign(signed: &Value, keys: &[&SigningKey]) -> Vec<u8> {
    sign_metadata(signed, keys).expect("sign metadata")
}

/// A digest from real published images, used as target data.
pub const NGINX_1_13_9: &str = "4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de";

/// HTTP client for one server.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base_url: String,
}

impl Client {
    pub fn new(base_url: &str) -> Client {
        Client { http: reqwest::Client::new(), base_url: base_url.to_owned() }
    }

    /// Builds a client that sends `Authorization: Bearer TOKEN` with every request.
    pub fn with_token(base_url: &str, token: &str) -> Client {
        let mut headers = reqwest::header::HeaderMap::new();
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("token header");
        headers.insert(reqwest::header::AUTHORIZATION, value);
        let http = reqwest::Client::builder().default_headers(headers).build().expect("HTTP client");
        Client { http, base_url: base_url.to_owned() }
    }

    pub fn tuf_url(&self, gun: &str, file: &str) -> String {
        format!("{}/v2/{gun}/_trust/tuf/{file}", self.base_url)
    }

    /// Fetches a server-held public key.
    pub async fn server_key(&self, gun: &str, role: &str) -> Value {
        let response = self.http.get(self.tuf_url(gun, &format!("{role}.key"))).send().await.expect("GET key");
        assert_eq!(response.status(), 200, "GET {role}.key");
        response.json().await.expect("key JSON")
    }

    /// Uploads parts (role name, bytes); returns the status and the JSON body.
    pub async fn upload(&self, gun: &str, parts: &[(&str, Vec<u8>)]) -> (u16, Value) {
        let mut form = reqwest::multipart::Form::new();
        for (role, bytes) in parts {
            let part = reqwest::multipart::Part::bytes(bytes.clone())
                .file_name((*role).to_owned())
                .mime_str("application/octet-stream")
                .expect("mime");
            form = form.part("files", part);
        }
        let response = self.http.post(self.tuf_url(gun, "")).multipart(form).send().await.expect("POST upload");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn get(&self, gun: &str, file: &str) -> reqwest::Response {
        self.http.get(self.tuf_url(gun, file)).send().await.expect("GET")
    }

    /// Current version of a role, read from the served JSON.
    pub async fn version(&self, gun: &str, role: &str) -> u64 {
        let response = self.get(gun, &format!("{role}.json")).await;
        assert_eq!(response.status(), 200, "GET {role}.json");
        let value: Value = response.json().await.expect("JSON");
        value["signed"]["version"].as_u64().expect("version")
    }
}

/// A publisher with its own root and targets keys, for one repository.
pub struct Repo {
    pub gun: String,
    pub root_key: SigningKey,
    pub targets_key: SigningKey,
    pub timestamp_key: Value,
    pub snapshot_key: Value,
    pub client: Client,
}

impl Repo {
    /// Fetches the server keys and builds, but does not upload, a repository.
    pub async fn new(client: &Client, gun: &str) -> Repo {
        let timestamp_key = client.server_key(gun, "timestamp").await;
        let snapshot_key = client.server_key(gun, "snapshot").await;
        Repo { gun: gun.to_owned(), root_key: ed25519(), targets_key: ed25519(), timestamp_key, snapshot_key, client: client.clone() }
    }

    /// `signed` of root `version` with this repository's keys.
    pub fn root(&self, version: u64) -> Value {
        root_signed(
            version,
            &expires_in_days(365),
            &RoleSpec::of(&[&self.root_key], 1),
            &RoleSpec::of(&[&self.targets_key], 1),
            &RoleSpec::server(&self.snapshot_key),
            &RoleSpec::server(&self.timestamp_key),
        )
    }

    pub fn root_bytes(&self, version: u64) -> Vec<u8> {
        sign(&self.root(version), &[&self.root_key])
    }

    pub fn targets_bytes(&self, version: u64, targets: &[(&str, &str, u64)]) -> Vec<u8> {
        sign(&targets_signed(version, &expires_in_days(90), targets), &[&self.targets_key])
    }

    /// Uploads root v1 and targets v1 with one tag.
    pub async fn init(client: &Client, gun: &str) -> Repo {
        let repo = Repo::new(client, gun).await;
        let (status, body) = client
            .upload(gun, &[("root", repo.root_bytes(1)), ("targets", repo.targets_bytes(1, &[("1.13.9", NGINX_1_13_9, 1570)]))])
            .await;
        assert_eq!(status, 200, "initial upload: {body}");
        repo
    }
}
