//! Command-line options, environment variables and the optional TOML file, resolved once in
//! `main` into a [`Config`] that the rest of the server reads.
//!
//! Precedence: command line, then `SIGNET_*` environment variables, then the TOML file, then the
//! defaults below.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use signet_core::signing::KeyAlgorithm;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:4443";
pub const DEFAULT_DATA_DIR: &str = "signet-data";
pub const DEFAULT_TIMESTAMP_LIFETIME: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_SNAPSHOT_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_millis(100);
pub const DEFAULT_CURRENT_MAX_AGE: Duration = Duration::from_secs(10);
pub const DEFAULT_RESIGN_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_ROLE_SIZE: u64 = 16 * 1024 * 1024;
pub const DEFAULT_MAX_REQUEST_SIZE: u64 = 32 * 1024 * 1024;
pub const DEFAULT_DB_MAX_CONNECTIONS: u32 = 16;
pub const DEFAULT_DB_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
pub const DEFAULT_TOKEN_SERVICE: &str = "signet";
pub const BUILTIN_TOKEN_ISSUER: &str = "signet-server";
pub const DEFAULT_TOKEN_TTL: &str = "30d";

/// signet-server: stores and serves signed TUF metadata for container image repositories.
#[derive(Debug, Parser)]
#[command(name = "signet-server", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub options: Options,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default when no subcommand is given).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Issue, list and revoke tokens of the built-in issuer (for --auth builtin). Works while
    /// the server runs, with the same --data-dir or --database-url.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Issue a token and print it, alone, on stdout.
    Issue(IssueArgs),
    /// List issued tokens: id, subject, access, expiry and revocation. Never the tokens.
    List,
    /// Revoke a token by id; the server rejects it from then on.
    Revoke {
        /// Token id, as `token list` prints it.
        id: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct IssueArgs {
    /// Repositories the token grants access to, such as 'registry.example/team/*' (repeatable).
    /// `*` matches whole path segments only; as the last segment it matches one or more.
    #[arg(long = "gun", value_name = "PATTERN")]
    pub guns: Vec<String>,
    /// Actions on those repositories, comma-separated: pull (read), push (upload) or * (all,
    /// including deletion and server key rotation).
    #[arg(long, value_delimiter = ',', default_value = "pull", value_name = "ACTIONS")]
    pub actions: Vec<String>,
    /// Also grant the server-wide endpoints: the global changefeed and /metrics.
    #[arg(long)]
    pub admin: bool,
    /// Lifetime of the token, such as 30d or 12h.
    #[arg(long, default_value = DEFAULT_TOKEN_TTL, value_name = "DURATION")]
    pub ttl: HumanDuration,
    /// Subject recorded with every change made with the token [default: token-ID].
    #[arg(long, value_name = "NAME")]
    pub subject: Option<String>,
}

/// Authentication mode of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// No authentication: allowed only on a loopback address unless --insecure-no-auth.
    None,
    /// Tokens from `signet-server token issue`.
    Builtin,
    /// Tokens from an external Docker registry token service (--token-key, --token-issuer,
    /// --token-realm).
    RegistryToken,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings shared by every subcommand. Each is optional here so that the TOML file can fill
/// what the command line and environment leave unset.
#[derive(Debug, Default, Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Options {
    /// TOML file with any of these settings, keyed by the long option name without the leading
    /// dashes (for example `listen = "0.0.0.0:4443"`).
    #[arg(long, env = "SIGNET_CONFIG", global = true, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address and port to listen on [default: 127.0.0.1:4443].
    #[arg(long, env = "SIGNET_LISTEN", global = true, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// PostgreSQL URL. Without one, the server runs an embedded PostgreSQL cluster in the data
    /// directory.
    #[arg(long, env = "SIGNET_DATABASE_URL", global = true, hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// Directory for the embedded PostgreSQL cluster and the generated key encryption key
    /// [default: ./signet-data].
    #[arg(long, env = "SIGNET_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// File holding the 32-byte key encryption key (64 hex characters) that encrypts server-held
    /// private keys [default: DATA_DIR/key-encryption-key, created on first start].
    #[arg(long, env = "SIGNET_KEY_ENCRYPTION_KEY_FILE", global = true, value_name = "FILE")]
    pub key_encryption_key_file: Option<PathBuf>,

    /// Key encryption key as 64 hex characters; takes precedence over the file. Prefer the
    /// environment variable to the command line, where other users can read it.
    #[arg(long, env = "SIGNET_KEY_ENCRYPTION_KEY", global = true, hide_env_values = true, value_name = "HEX")]
    #[serde(skip)]
    pub key_encryption_key: Option<String>,

    /// Algorithm of new server-held keys: ed25519 or ecdsa [default: ed25519].
    #[arg(long, env = "SIGNET_SERVER_KEY_ALGORITHM", global = true, value_name = "ALGORITHM")]
    pub server_key_algorithm: Option<String>,

    /// Lifetime of each timestamp the server signs, such as 1d or 12h [default: 1d].
    #[arg(long, env = "SIGNET_TIMESTAMP_LIFETIME", global = true, value_name = "DURATION")]
    pub timestamp_lifetime: Option<HumanDuration>,

    /// Lifetime of each snapshot the server signs [default: 7d].
    #[arg(long, env = "SIGNET_SNAPSHOT_LIFETIME", global = true, value_name = "DURATION")]
    pub snapshot_lifetime: Option<HumanDuration>,

    /// How long superseded timestamp and snapshot versions are kept before pruning [default: 30d].
    #[arg(long, env = "SIGNET_RETENTION", global = true, value_name = "DURATION")]
    pub retention: Option<HumanDuration>,

    /// How often the background task re-signs timestamps and snapshots that passed half their
    /// lifetime, and prunes old versions [default: 60s].
    #[arg(long, env = "SIGNET_RESIGN_INTERVAL", global = true, value_name = "DURATION")]
    pub resign_interval: Option<HumanDuration>,

    /// How long current metadata may be served from memory; 0 reads the database on every
    /// request [default: 100ms].
    #[arg(long, env = "SIGNET_CACHE_TTL", global = true, value_name = "DURATION")]
    pub cache_ttl: Option<HumanDuration>,

    /// Cache-Control max-age sent with current (unversioned) metadata [default: 10s].
    #[arg(long, env = "SIGNET_CURRENT_MAX_AGE", global = true, value_name = "DURATION")]
    pub current_max_age: Option<HumanDuration>,

    /// Largest accepted metadata file for one role, in bytes [default: 16777216].
    #[arg(long, env = "SIGNET_MAX_ROLE_SIZE", global = true, value_name = "BYTES")]
    pub max_role_size: Option<u64>,

    /// Largest accepted upload request body, in bytes [default: 33554432].
    #[arg(long, env = "SIGNET_MAX_REQUEST_SIZE", global = true, value_name = "BYTES")]
    pub max_request_size: Option<u64>,

    /// Maximum number of database connections of this process [default: 16].
    #[arg(long, env = "SIGNET_DB_MAX_CONNECTIONS", global = true, value_name = "COUNT")]
    pub db_max_connections: Option<u32>,

    /// How long a request waits for a database connection before the server returns 503
    /// [default: 3s].
    #[arg(long, env = "SIGNET_DB_ACQUIRE_TIMEOUT", global = true, value_name = "DURATION")]
    pub db_acquire_timeout: Option<HumanDuration>,

    /// Log format on stderr: text or json [default: text].
    #[arg(long, env = "SIGNET_LOG_FORMAT", global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// PEM certificate chain for HTTPS, with --tls-key. Both files are read again on SIGHUP.
    #[arg(long, env = "SIGNET_TLS_CERT", global = true, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for HTTPS (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "SIGNET_TLS_KEY", global = true, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Serve plain HTTP on an address other than loopback. Anyone on the network path can then
    /// read tokens and change responses; the server warns at start.
    #[arg(long, env = "SIGNET_INSECURE_PLAIN_HTTP", global = true)]
    #[serde(default)]
    pub insecure_plain_http: bool,

    /// Authentication: none, builtin or registry-token [default: none].
    #[arg(long, env = "SIGNET_AUTH", global = true, value_name = "MODE")]
    pub auth: Option<AuthMode>,

    /// Accept requests without authentication on an address other than loopback (with --auth
    /// none). Anyone who reaches the server can then publish and delete; the server warns at start.
    #[arg(long, env = "SIGNET_INSECURE_NO_AUTH", global = true)]
    #[serde(default)]
    pub insecure_no_auth: bool,

    /// Let requests without a token read metadata. Writes still need a token.
    #[arg(long, env = "SIGNET_ANONYMOUS_READ", global = true)]
    #[serde(default)]
    pub anonymous_read: bool,

    /// Public keys of the external token service (--auth registry-token): a PEM file of public
    /// keys or certificates, or a JWKS file.
    #[arg(long, env = "SIGNET_TOKEN_KEY", global = true, value_name = "FILE")]
    pub token_key: Option<PathBuf>,

    /// Issuer (`iss`) that tokens must name [builtin: signet-server].
    #[arg(long, env = "SIGNET_TOKEN_ISSUER", global = true, value_name = "NAME")]
    pub token_issuer: Option<String>,

    /// Service name: the audience (`aud`) tokens must name, sent in 401 challenges [default: signet].
    #[arg(long, env = "SIGNET_TOKEN_SERVICE", global = true, value_name = "NAME")]
    pub token_service: Option<String>,

    /// URL of the token service, sent as the realm of 401 challenges (--auth registry-token).
    #[arg(long, env = "SIGNET_TOKEN_REALM", global = true, value_name = "URL")]
    pub token_realm: Option<String>,

    /// Only repositories whose GUN is under one of these prefixes may exist, such as
    /// registry.example.com/team (repeatable; comma-separated in the environment).
    #[arg(long = "gun-prefix", env = "SIGNET_GUN_PREFIX", value_delimiter = ',', global = true, value_name = "PREFIX")]
    #[serde(default)]
    pub gun_prefix: Vec<String>,
}

/// A duration written as a number and a unit: `ms`, `s`, `m`, `h` or `d` (`30s`, `15m`, `7d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("invalid duration {text:?}; write a number and a unit: ms, s, m, h or d (for example 30s, 15m, 7d)");
        // Zero needs no unit.
        if text == "0" {
            return Ok(HumanDuration(Duration::ZERO));
        }
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?;
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().map_err(|_| invalid())?;
        let millis_per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(invalid()),
        };
        let millis = number.checked_mul(millis_per_unit).ok_or_else(invalid)?;
        Ok(HumanDuration(Duration::from_millis(millis)))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Database location.
#[derive(Debug, Clone)]
pub enum DatabaseSource {
    Url(String),
    Embedded,
}

/// Source of the key encryption key.
#[derive(Debug, Clone)]
pub enum KekSource {
    Hex(String),
    File { path: PathBuf, create: bool },
}

/// Resolved authentication settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub mode: AuthMode,
    pub anonymous_read: bool,
    pub insecure_no_auth: bool,
    pub token_key: Option<PathBuf>,
    pub issuer: String,
    pub service: String,
    /// Realm of 401 challenges: the token service URL, or the service name for built-in tokens.
    pub realm: String,
}

/// Resolved server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database: DatabaseSource,
    pub data_dir: PathBuf,
    pub kek: KekSource,
    pub server_key_algorithm: KeyAlgorithm,
    pub timestamp_lifetime: Duration,
    pub snapshot_lifetime: Duration,
    pub retention: Duration,
    pub resign_interval: Duration,
    pub cache_ttl: Duration,
    pub current_max_age: Duration,
    pub max_role_size: u64,
    pub max_request_size: u64,
    pub db_max_connections: u32,
    pub db_acquire_timeout: Duration,
    pub log_format: LogFormat,
    pub tls: Option<crate::tls::TlsFiles>,
    pub insecure_plain_http: bool,
    pub auth: AuthConfig,
    /// Allowed GUN prefixes, without a trailing `/`; empty allows every repository.
    pub gun_prefixes: Vec<String>,
}

impl Config {
    /// Merges command-line and environment options with the TOML file and the defaults.
    pub fn resolve(options: Options) -> anyhow::Result<Config> {
        let file = match &options.config {
            Some(path) => read_toml(path)?,
            None => Options::default(),
        };
        let o = options;

        let data_dir = o.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database = match o.database_url.or(file.database_url) {
            // The URL is left out of the message because it may hold a password.
            Some(url) if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) => {
                anyhow::bail!("invalid --database-url: expected postgres://USER:PASSWORD@HOST:PORT/DATABASE")
            }
            Some(url) => DatabaseSource::Url(url),
            None => DatabaseSource::Embedded,
        };
        let kek = match (o.key_encryption_key, o.key_encryption_key_file.or(file.key_encryption_key_file)) {
            (Some(hex), _) => KekSource::Hex(hex),
            (None, Some(path)) => KekSource::File { path, create: false },
            (None, None) => KekSource::File { path: data_dir.join("key-encryption-key"), create: true },
        };
        let algorithm_name = o.server_key_algorithm.or(file.server_key_algorithm).unwrap_or_else(|| "ed25519".to_owned());
        let server_key_algorithm = KeyAlgorithm::parse(&algorithm_name)
            .with_context(|| format!("invalid server key algorithm {algorithm_name:?}; use ed25519 or ecdsa"))?;

        let duration = |cli: Option<HumanDuration>, toml: Option<HumanDuration>, default: Duration| {
            cli.or(toml).map_or(default, |d| d.0)
        };
        let config = Config {
            listen: match o.listen.or(file.listen) {
                Some(listen) => listen,
                None => DEFAULT_LISTEN.parse().context("default listen address")?,
            },
            database,
            data_dir,
            kek,
            server_key_algorithm,
            timestamp_lifetime: duration(o.timestamp_lifetime, file.timestamp_lifetime, DEFAULT_TIMESTAMP_LIFETIME),
            snapshot_lifetime: duration(o.snapshot_lifetime, file.snapshot_lifetime, DEFAULT_SNAPSHOT_LIFETIME),
            retention: duration(o.retention, file.retention, DEFAULT_RETENTION),
            resign_interval: duration(o.resign_interval, file.resign_interval, DEFAULT_RESIGN_INTERVAL),
            cache_ttl: duration(o.cache_ttl, file.cache_ttl, DEFAULT_CACHE_TTL),
            current_max_age: duration(o.current_max_age, file.current_max_age, DEFAULT_CURRENT_MAX_AGE),
            max_role_size: o.max_role_size.or(file.max_role_size).unwrap_or(DEFAULT_MAX_ROLE_SIZE),
            max_request_size: o.max_request_size.or(file.max_request_size).unwrap_or(DEFAULT_MAX_REQUEST_SIZE),
            db_max_connections: o.db_max_connections.or(file.db_max_connections).unwrap_or(DEFAULT_DB_MAX_CONNECTIONS),
            db_acquire_timeout: duration(o.db_acquire_timeout, file.db_acquire_timeout, DEFAULT_DB_ACQUIRE_TIMEOUT),
            log_format: o.log_format.or(file.log_format).unwrap_or(LogFormat::Text),
            tls: match (o.tls_cert.or(file.tls_cert), o.tls_key.or(file.tls_key)) {
                (Some(cert), Some(key)) => Some(crate::tls::TlsFiles { cert, key }),
                (None, None) => None,
                _ => anyhow::bail!("--tls-cert and --tls-key go together; pass both or neither"),
            },
            insecure_plain_http: o.insecure_plain_http || file.insecure_plain_http,
            auth: resolve_auth(
                o.auth.or(file.auth).unwrap_or(AuthMode::None),
                o.anonymous_read || file.anonymous_read,
                o.insecure_no_auth || file.insecure_no_auth,
                o.token_key.or(file.token_key),
                o.token_issuer.or(file.token_issuer),
                o.token_service.or(file.token_service),
                o.token_realm.or(file.token_realm),
            )?,
            gun_prefixes: if o.gun_prefix.is_empty() { file.gun_prefix } else { o.gun_prefix }
                .into_iter()
                .map(|prefix| prefix.trim_end_matches('/').to_owned())
                .filter(|prefix| !prefix.is_empty())
                .collect(),
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.timestamp_lifetime >= Duration::from_secs(10), "--timestamp-lifetime must be at least 10s");
        anyhow::ensure!(self.snapshot_lifetime >= Duration::from_secs(10), "--snapshot-lifetime must be at least 10s");
        anyhow::ensure!(!self.resign_interval.is_zero(), "--resign-interval must be more than 0");
        anyhow::ensure!(
            self.resign_interval < self.timestamp_lifetime / 2,
            "--resign-interval must be shorter than half of --timestamp-lifetime, or timestamps could expire before they are re-signed"
        );
        anyhow::ensure!(self.db_max_connections >= 1, "--db-max-connections must be at least 1");
        anyhow::ensure!(self.max_role_size >= 1024, "--max-role-size must be at least 1024 bytes");
        anyhow::ensure!(self.max_request_size >= self.max_role_size, "--max-request-size must be at least --max-role-size");
        Ok(())
    }
}

fn resolve_auth(
    mode: AuthMode,
    anonymous_read: bool,
    insecure_no_auth: bool,
    token_key: Option<PathBuf>,
    issuer: Option<String>,
    service: Option<String>,
    realm: Option<String>,
) -> anyhow::Result<AuthConfig> {
    let service = service.unwrap_or_else(|| DEFAULT_TOKEN_SERVICE.to_owned());
    let (issuer, realm) = match mode {
        AuthMode::RegistryToken => {
            anyhow::ensure!(token_key.is_some(), "--auth registry-token needs --token-key FILE with the token service's public keys");
            let issuer = issuer.context("--auth registry-token needs --token-issuer NAME, the `iss` its tokens carry")?;
            let realm = realm.context("--auth registry-token needs --token-realm URL, where clients get tokens")?;
            anyhow::ensure!(realm.starts_with("https://") || realm.starts_with("http://"), "--token-realm must be an http(s) URL, got {realm:?}");
            (issuer, realm)
        }
        AuthMode::Builtin | AuthMode::None => {
            (issuer.unwrap_or_else(|| BUILTIN_TOKEN_ISSUER.to_owned()), realm.unwrap_or_else(|| service.clone()))
        }
    };
    Ok(AuthConfig { mode, anonymous_read, insecure_no_auth, token_key, issuer, service, realm })
}

/// True when `gun` is one of `prefixes` or under one of them, by whole path segments. An empty
/// list allows every repository.
pub fn gun_allowed(prefixes: &[String], gun: &str) -> bool {
    prefixes.is_empty()
        || prefixes.iter().any(|prefix| gun == prefix || gun.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.starts_with('/')))
}

fn read_toml(path: &Path) -> anyhow::Result<Options> {
    let text = std::fs::read_to_string(path).with_context(|| format!("failed to read configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid configuration file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!("30s".parse::<HumanDuration>().unwrap().0, Duration::from_secs(30));
        assert_eq!("15m".parse::<HumanDuration>().unwrap().0, Duration::from_secs(900));
        assert_eq!("7d".parse::<HumanDuration>().unwrap().0, Duration::from_secs(7 * 86400));
        assert_eq!("100ms".parse::<HumanDuration>().unwrap().0, Duration::from_millis(100));
        assert_eq!("0".parse::<HumanDuration>().unwrap().0, Duration::ZERO);
        for bad in ["", "s", "10", "10x", "-1s", "1.5h", "99999999999999999999d"] {
            assert!(bad.parse::<HumanDuration>().is_err(), "{bad}");
        }
    }

    #[test]
    fn database_url_needs_postgres_scheme() {
        let options = Options { database_url: Some("bogus://user:hunter2@host/db".to_owned()), ..Options::default() };
        let message = format!("{:#}", Config::resolve(options).unwrap_err());
        assert!(message.contains("postgres://USER:PASSWORD@HOST"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn gun_prefixes_match_whole_segments() {
        let prefixes = vec!["registry.example.com/team".to_owned()];
        assert!(gun_allowed(&prefixes, "registry.example.com/team/app"));
        assert!(gun_allowed(&prefixes, "registry.example.com/team"));
        assert!(!gun_allowed(&prefixes, "registry.example.com/teamx/app"));
        assert!(!gun_allowed(&prefixes, "registry.example.com/other/app"));
        assert!(gun_allowed(&[], "anything/at/all"));
    }

    #[test]
    fn toml_fills_unset_options() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signet.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\ntimestamp-lifetime = \"2d\"\n").unwrap();
        let options = Options { config: Some(path), timestamp_lifetime: Some(HumanDuration(Duration::from_secs(7200))), ..Options::default() };
        let config = Config::resolve(options).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.timestamp_lifetime, Duration::from_secs(7200));
    }
}
