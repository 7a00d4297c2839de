//! Shared state handed to every handler and background task.

use std::sync::Arc;

use sqlx::PgPool;

use crate::auth::Authenticator;
use crate::cache::MetadataCache;
use crate::config::Config;
use crate::keys::Kek;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub kek: Arc<Kek>,
    pub cache: Arc<MetadataCache>,
    pub metrics: Arc<Metrics>,
    pub auth: Arc<Authenticator>,
}

impl AppState {
    pub fn new(pool: PgPool, config: Config, kek: Kek, auth: Authenticator) -> AppState {
        let cache = MetadataCache::new(config.cache_ttl);
        AppState {
            pool,
            config: Arc::new(config),
            kek: Arc::new(kek),
            cache: Arc::new(cache),
            metrics: Arc::new(Metrics::default()),
            auth: Arc::new(auth),
        }
    }
}
