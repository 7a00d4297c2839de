//! HTTP access to a signet-server (or any server with Notary's layout) for one repository.

use std::time::Duration;

use serde_json::Value;
use signet_core::Gun;

/// Time allowed for connecting and for a whole request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A failed request. Server refusals carry the server's error code and message.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("invalid server URL {0:?}; use http://HOST:PORT or https://HOST:PORT")]
    InvalidUrl(String),

    #[error("cannot reach the server at {url}")]
    Unreachable { url: String, #[source] source: reqwest::Error },

    #[error("{file} is larger than the limit of {limit} bytes (endless data attack or misconfigured server)")]
    TooLarge { file: String, limit: u64 },

    #[error("server returned {status} for {file}: {message}")]
    Status { file: String, status: u16, code: String, message: String, detail: Value },
}

impl RemoteError {
    /// True when the server returned 409: another publisher committed first, or the uploaded
    /// version is not newer than the stored one.
    pub fn is_conflict(&self) -> bool {
        matches!(self, RemoteError::Status { status: 409, .. })
    }
}

/// One repository on one server.
#[derive(Debug, Clone)]
pub struct Remote {
    http: reqwest::Client,
    base: String,
}

impl Remote {
    pub fn new(server: &str, gun: &Gun) -> Result<Remote, RemoteError> {
        let server = server.trim_end_matches('/');
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(RemoteError::InvalidUrl(server.to_owned()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("signet/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| RemoteError::InvalidUrl(server.to_owned()))?;
        Ok(Remote { http, base: format!("{server}/v2/{gun}/_trust/tuf/") })
    }

    /// Creates a remote whose metadata files are directly under `base_url`, for any TUF
    /// repository layout such as a conformance test server.
    pub fn from_base_url(base_url: &str) -> Result<Remote, RemoteError> {
        let gun = Gun::parse("unused").map_err(|_| RemoteError::InvalidUrl(base_url.to_owned()))?;
        let server = base_url.trim_end_matches('/');
        let mut remote = Remote::new(server, &gun)?;
        remote.base = format!("{server}/");
        Ok(remote)
    }

    /// Downloads any URL of at most `limit` bytes (target files). Returns `None` on 404.
    pub async fn fetch_url(&self, url: &str, limit: u64) -> Result<Option<Vec<u8>>, RemoteError> {
        let mut response = self.http.get(url).send().await.map_err(|source| RemoteError::Unreachable { url: url.to_owned(), source })?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(status_error(url, response).await);
        }
        if response.content_length().is_some_and(|length| length > limit) {
            return Err(RemoteError::TooLarge { file: url.to_owned(), limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|source| RemoteError::Unreachable { url: url.to_owned(), source })? {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(RemoteError::TooLarge { file: url.to_owned(), limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }

    /// URL of a metadata file; `file` must already be percent-encoded where needed.
    pub fn url(&self, file: &str) -> String {
        format!("{}{file}", self.base)
    }

    /// Downloads a metadata file of at most `limit` bytes. Returns `None` on 404.
    pub async fn fetch(&self, file: &str, limit: u64) -> Result<Option<Vec<u8>>, RemoteError> {
        self.fetch_url(&self.url(file), limit).await
    }

    /// Fetches a server-held public key (`timestamp` or `snapshot`).
    pub async fn server_key(&self, role: &str) -> Result<Value, RemoteError> {
        let file = format!("{role}.key");
        let url = self.url(&file);
        let response = self.http.get(&url).send().await.map_err(|source| RemoteError::Unreachable { url: url.clone(), source })?;
        if !response.status().is_success() {
            return Err(status_error(&file, response).await);
        }
        response.json().await.map_err(|source| RemoteError::Unreachable { url, source })
    }

    /// Asks the server for a new pending key of `role` (`timestamp` or `snapshot`), to be listed
    /// in the next root.
    pub async fn rotate_server_key(&self, role: &str) -> Result<Value, RemoteError> {
        let file = format!("{role}.key");
        let url = self.url(&file);
        let response = self.http.post(&url).send().await.map_err(|source| RemoteError::Unreachable { url: url.clone(), source })?;
        if !response.status().is_success() {
            return Err(status_error(&file, response).await);
        }
        response.json().await.map_err(|source| RemoteError::Unreachable { url, source })
    }

    /// Uploads signed roles in one atomic update.
    pub async fn upload(&self, parts: Vec<(String, Vec<u8>)>) -> Result<(), RemoteError> {
        let mut form = reqwest::multipart::Form::new();
        for (role, bytes) in parts {
            let part = reqwest::multipart::Part::bytes(bytes).file_name(role);
            form = form.part("files", part);
        }
        let url = self.base.clone();
        let response = self.http.post(&url).multipart(form).send().await.map_err(|source| RemoteError::Unreachable { url, source })?;
        if !response.status().is_success() {
            return Err(status_error("the upload", response).await);
        }
        Ok(())
    }

    /// Deletes the repository's metadata on the server.
    pub async fn delete(&self) -> Result<(), RemoteError> {
        let url = self.base.clone();
        let response = self.http.delete(&url).send().await.map_err(|source| RemoteError::Unreachable { url, source })?;
        if !response.status().is_success() && response.status() != reqwest::StatusCode::NOT_FOUND {
            return Err(status_error("the repository", response).await);
        }
        Ok(())
    }
}

async fn status_error(file: &str, response: reqwest::Response) -> RemoteError {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let error = &body["errors"][0];
    RemoteError::Status {
        file: file.to_owned(),
        status,
        code: error["code"].as_str().unwrap_or_default().to_owned(),
        message: error["message"].as_str().unwrap_or("no error message").to_owned(),
        detail: error["detail"].clone(),
    }
}
