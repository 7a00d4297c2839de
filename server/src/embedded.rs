//! Placeholder until the embedded PostgreSQL manager lands.
use std::path::Path;
#[derive(Debug, thiserror::Error)]
#[error("embedded PostgreSQL is not available yet")]
pub struct EmbeddedError;
pub struct EmbeddedPostgres { url: String }
impl EmbeddedPostgres {
    pub async fn start(_data_dir: &Path) -> Result<EmbeddedPostgres, EmbeddedError> { Err(EmbeddedError) }
    pub fn database_url(&self) -> &str { &self.url }
    pub async fn stop(self) -> Result<(), EmbeddedError> { Ok(()) }
}
