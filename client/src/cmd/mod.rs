//! Command-line definition, shared context and error reporting. One module per command group.

mod keys;
mod login;
mod lookup;
mod pin;
mod publish;
mod root;
mod trust;

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

use clap::{Parser, Subcommand, ValueEnum};
use signet_client::auth::{self, CredentialStore, ServerAuth};
use signet_client::keystore::{KeyRole, KeyStore, KeyStoreError};
use signet_client::passphrase::{read_passphrase, PassphrasePurpose, SystemTerminal};
use signet_client::reference::Reference;
use signet_client::registry::{Registry, RegistryError, RegistryOptions};
use signet_client::remote::{read_ca_certificates, Remote, RemoteOptions};
use signet_client::state::RepositoryState;
use signet_client::updater::{UpdateError, Updater};
use signet_core::signing::SigningKey;
use signet_core::Gun;
use zeroize::Zeroizing;

/// Exit code for a tag that is not signed or metadata that failed verification.
pub const EXIT_UNTRUSTED: u8 = 3;

/// signet: sign container image tags and verify them before pulling by digest.
///
/// Exit codes: 0 verified or done; 1 operational failure (network, server error, I/O, wrong
/// passphrase); 2 usage error or missing trusted root; 3 not trusted (tag not signed, digest
/// differs, or metadata failed verification).
#[derive(Debug, Parser)]
#[command(name = "signet", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Trust server URL.
    #[arg(long, env = "SIGNET_SERVER", global = true, default_value = "http://127.0.0.1:4443")]
    server: String,

    /// Home directory for keys and trusted metadata [default: ~/.signet].
    #[arg(long, env = "SIGNET_HOME", global = true)]
    home: Option<PathBuf>,

    /// Output format of results on stdout.
    #[arg(long, value_enum, global = true, default_value = "text")]
    output: OutputFormat,

    /// Print progress details on stderr.
    #[arg(short, long, global = true)]
    verbose: bool,

    /// Bearer token sent to the trust server [default: the contents of the file `token` in the
    /// signet home, which must be readable by its owner only].
    #[arg(long, value_name = "TOKEN", env = "SIGNET_TOKEN", hide_env_values = true, global = true)]
    token: Option<SecretArg>,

    /// Trust the PEM CA certificates in FILE for the trust server's HTTPS, besides the system
    /// roots.
    #[arg(long, value_name = "FILE", env = "SIGNET_TLS_CA", global = true)]
    tls_ca: Option<PathBuf>,

    /// Reach this registry over plain HTTP instead of HTTPS (repeatable). Anyone on the network
    /// path can then change what the registry serves; signet warns each time.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]", global = true)]
    insecure_registry: Vec<String>,

    /// Trust this PEM CA certificate for registry HTTPS, besides the system roots (repeatable).
    #[arg(long = "registry-ca", value_name = "FILE", global = true)]
    registry_ca: Vec<PathBuf>,

    /// Docker config file with registry credentials [default: $DOCKER_CONFIG/config.json, else
    /// ~/.docker/config.json].
    #[arg(long, value_name = "FILE", global = true)]
    docker_config: Option<PathBuf>,

    /// Name registry repositories differently on the trust server: images under the registry
    /// prefix FROM have the GUN prefix TO, such as `localhost:5000=registry.example.com`
    /// (repeatable, or comma-separated in SIGNET_GUN_MAP).
    #[arg(long = "gun-map", value_name = "FROM=TO", env = "SIGNET_GUN_MAP", value_delimiter = ',', global = true)]
    gun_map: Vec<String>,
}

/// A secret command-line value. clap stores it as given, and `Debug` never shows it. Any string
/// is accepted here so that clap's own errors never quote the value, and the checks come later.
#[derive(Clone)]
pub struct SecretArg(Zeroizing<String>);

impl From<String> for SecretArg {
    fn from(value: String) -> SecretArg {
        SecretArg(Zeroizing::new(value))
    }
}

impl fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretArg(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create root and targets keys and publish root version 1 and an empty targets role.
    Init(publish::InitArgs),
    /// Sign TAG as DIGEST and publish (or stage with --no-publish).
    Sign(publish::SignArgs),
    /// Remove a signed tag and publish (or stage with --no-publish).
    Unsign(publish::UnsignArgs),
    /// Publish staged changes.
    Publish(publish::PublishArgs),
    /// Show every role's version, expiry and key ids, and staged changes.
    Status(publish::StatusArgs),
    /// Re-sign root or targets with a new version and expiry, content unchanged.
    Resign(publish::ResignArgs),
    /// Drop staged changes.
    Reset(publish::GunArgs),
    /// Verify a tag and print the pinned reference GUN@sha256:HEX.
    Lookup(lookup::LookupArgs),
    /// Succeed only if DIGEST is the signed digest of the tag.
    Verify(lookup::VerifyArgs),
    /// List every signed tag with digest, size and signing role.
    List(lookup::ListArgs),
    /// Export or import a repository's trusted root.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Delete local state of a repository, and with --remote its metadata on the server.
    Delete(publish::DeleteArgs),
    /// Manage private keys.
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Edit, sign and publish a root that needs signatures from several key holders.
    #[command(subcommand)]
    Root(root::RootCommand),
    /// Rewrite image references in Kubernetes manifests, Compose files and Dockerfiles to
    /// verified digests, or with --check only verify that they are pinned.
    Pin(pin::PinArgs),
    /// Store a user name and password for the trust server's token service, after checking them.
    Login(login::LoginArgs),
    /// Remove the stored user name and password for a trust server.
    Logout(login::LogoutArgs),
}

/// A failed command with the exit code it maps to.
pub struct Failure {
    code: u8,
    error: anyhow::Error,
    hint: Option<String>,
}

impl Failure {
    pub fn operational(error: impl Into<anyhow::Error>) -> Failure {
        Failure { code: 1, error: error.into(), hint: None }
    }

    pub fn usage(error: impl Into<anyhow::Error>) -> Failure {
        Failure { code: 2, error: error.into(), hint: None }
    }

    pub fn untrusted(error: impl Into<anyhow::Error>) -> Failure {
        Failure { code: EXIT_UNTRUSTED, error: error.into(), hint: None }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    pub fn exit_code(&self) -> u8 {
        self.code
    }

    /// Prints `error: …`, the cause chain, then a hint.
    pub fn print(&self) {
        eprintln!("error: {}", self.error);
        for cause in self.error.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        if let Some(hint) = &self.hint {
            eprintln!("hint: {hint}");
        }
    }
}

impl From<UpdateError> for Failure {
    fn from(error: UpdateError) -> Failure {
        if error.is_untrusted() {
            Failure::untrusted(error)
        } else {
            Failure::operational(error)
        }
    }
}

impl From<KeyStoreError> for Failure {
    fn from(error: KeyStoreError) -> Failure {
        Failure::operational(error)
    }
}

pub type CmdResult = Result<(), Failure>;

/// Settings every command uses, resolved once from the command line and environment.
pub struct Context {
    pub server: String,
    pub home: PathBuf,
    pub output: OutputFormat,
    pub verbose: bool,
    registry_options: RegistryOptions,
    /// Registry name prefix and GUN prefix pairs from --gun-map.
    gun_map: Vec<(String, String)>,
    /// The --token or SIGNET_TOKEN value, not yet checked.
    token: Option<SecretArg>,
    tls_ca: Option<PathBuf>,
    /// Trust server options, resolved when a command first needs the server, so commands that
    /// stay local do not read the token file. Shared by every remote so that a fetched token is
    /// reused.
    remote_options: OnceLock<RemoteOptions>,
}

impl Context {
    fn from_cli(cli: &Cli) -> Result<Context, Failure> {
        let home = match &cli.home {
            Some(home) => home.clone(),
            None => {
                let base = std::env::var_os("HOME").ok_or_else(|| {
                    Failure::usage(anyhow::anyhow!("HOME is not set")).with_hint("pass --home DIR or set SIGNET_HOME")
                })?;
                PathBuf::from(base).join(".signet")
            }
        };
        let registry_options = RegistryOptions {
            insecure: cli.insecure_registry.clone(),
            ca_files: cli.registry_ca.clone(),
            docker_config: cli.docker_config.clone().or_else(|| signet_client::registry::default_docker_config(&env_var)),
        };
        let gun_map = cli.gun_map.iter().map(|entry| parse_gun_map(entry)).collect::<Result<_, _>>()?;
        Ok(Context {
            server: cli.server.clone(),
            home,
            output: cli.output,
            verbose: cli.verbose,
            registry_options,
            gun_map,
            token: cli.token.clone(),
            tls_ca: cli.tls_ca.clone(),
            remote_options: OnceLock::new(),
        })
    }

    /// Opens the registry client, warning about every registry reached over plain HTTP.
    pub fn registry(&self) -> Result<Registry, Failure> {
        for host in &self.registry_options.insecure {
            eprintln!("warning: --insecure-registry {host}: registry traffic to {host} is plain HTTP, so anyone on the network path can read it and change the manifests it serves");
        }
        Registry::new(self.registry_options.clone()).map_err(registry_failure)
    }

    /// Returns the GUN of an image repository: its normalized name, or the name with its
    /// registry prefix replaced by the matching --gun-map entry.
    pub fn gun_for(&self, name: &Gun) -> Result<Gun, Failure> {
        for (from, to) in &self.gun_map {
            let rest = match name.as_str().strip_prefix(from.as_str()) {
                Some("") => "",
                Some(rest) if rest.starts_with('/') => rest,
                _ => continue,
            };
            let mapped = format!("{to}{rest}");
            return Gun::parse(&mapped)
                .map_err(|error| Failure::usage(anyhow::Error::new(error).context(format!("--gun-map {from}={to} maps {name} to an invalid GUN {mapped:?}"))));
        }
        Ok(name.clone())
    }

    pub fn progress(&self, message: &str) {
        if self.verbose {
            eprintln!("{message}");
        }
    }

    pub fn keystore(&self) -> Result<KeyStore, Failure> {
        KeyStore::open(&self.home).map_err(Failure::operational)
    }

    pub fn remote(&self, gun: &Gun) -> Result<Remote, Failure> {
        let options = self.remote_options()?;
        Remote::with_options(&self.server, gun, options).map_err(Failure::usage)
    }

    /// Returns the trust server options: the token from --token, SIGNET_TOKEN or HOME/token, the
    /// credentials stored by `signet login` for --server, and the --tls-ca certificates.
    fn remote_options(&self) -> Result<&RemoteOptions, Failure> {
        if let Some(options) = self.remote_options.get() {
            return Ok(options);
        }

        let token = match &self.token {
            Some(SecretArg(token)) => Some(auth::check_token(token, "--token or SIGNET_TOKEN").map_err(Failure::usage)?),
            None => auth::read_token_file(&self.home).map_err(Failure::usage)?,
        };
        let credentials = match auth::server_key(&self.server) {
            Ok(_) => CredentialStore::new(&self.home).get(&self.server).map_err(Failure::usage)?,
            // An invalid --server is reported when the remote is built.
            Err(_) => None,
        };
        let options = RemoteOptions::new(ServerAuth { token, credentials }, self.ca_certificates()?);
        Ok(self.remote_options.get_or_init(|| options))
    }

    /// Reads the --tls-ca certificates; none without the option.
    pub fn ca_certificates(&self) -> Result<Vec<reqwest::Certificate>, Failure> {
        match &self.tls_ca {
            Some(path) => read_ca_certificates(path).map_err(|error| {
                Failure::usage(anyhow::Error::new(error).context(format!("invalid --tls-ca file {}", path.display())))
            }),
            None => Ok(Vec::new()),
        }
    }

    pub fn state(&self, gun: &Gun) -> RepositoryState {
        RepositoryState::new(&self.home, gun)
    }

    /// Opens an updater on the stored trusted root, or on `root_file`, or (only when asked)
    /// on the server's current root.
    pub async fn updater(&self, gun: &Gun, root_file: Option<&PathBuf>, trust_on_first_use: bool) -> Result<Updater, Failure> {
        let state = self.state(gun);
        let remote = self.remote(gun)?;
        let root = if let Some(path) = root_file {
            Some(std::fs::read(path).map_err(|e| Failure::usage(anyhow::Error::new(e).context(format!("failed to read root file {}", path.display()))))?)
        } else if state.has_trusted_root() {
            if trust_on_first_use {
                eprintln!("warning: --trust-on-first-use has no effect: a trusted root for {gun} is already stored");
            }
            None
        } else if trust_on_first_use {
            eprintln!("warning: --trust-on-first-use: trusting the root the server sends now for {gun}; an attacker who controls the server or the network at this moment controls what you trust");
            let root = remote.fetch("root.json", 512 * 1024).await.map_err(Failure::operational)?;
            Some(root.ok_or_else(|| Failure::operational(anyhow::anyhow!("the server has no root for {gun}")))?)
        } else {
            return Err(Failure::usage(anyhow::anyhow!("no trusted root for {gun}")).with_hint(format!(
                "get the root from the publisher and run `signet trust import {gun} ROOT_FILE`, or pass --root ROOT_FILE"
            )));
        };
        Ok(Updater::new(remote, state.metadata(), root, chrono::Utc::now())?)
    }

    /// Unlocks a stored key of `role` whose key id root lists (`listed`), asking for its
    /// passphrase.
    pub fn unlock(&self, role: KeyRole, gun: &Gun, listed: &[String]) -> Result<SigningKey, Failure> {
        let store = self.keystore()?;
        let found = store.list()?.into_iter().find(|info| info.role == role && listed.contains(&info.key_id));
        let info = found.ok_or_else(|| {
            Failure::operational(anyhow::anyhow!(
                "none of the {} keys that root lists for {gun} is in {}",
                role.name(),
                store.dir().display()
            ))
            .with_hint("import the key with `signet key import`, or run this on the machine that holds it")
        })?;
        let passphrase = self.new_passphrase_for_unlock(role, &info.key_id)?;
        Ok(store.load(&info.key_id, &passphrase)?)
    }

    /// Asks for the passphrase of an existing stored key, named by key id.
    pub fn new_passphrase_for_unlock(&self, role: KeyRole, key_id: &str) -> Result<signet_client::passphrase::Passphrase, Failure> {
        let label = format!("{} key {}", role.name(), &key_id[..8.min(key_id.len())]);
        let (passphrase, _) = read_passphrase(role, PassphrasePurpose::Unlock, &label, &env_var, &mut SystemTerminal)
            .map_err(Failure::operational)?;
        Ok(passphrase)
    }

    /// Asks for the passphrase of a new key.
    pub fn new_passphrase(&self, role: KeyRole, label: &str) -> Result<signet_client::passphrase::Passphrase, Failure> {
        let (passphrase, _) = read_passphrase(role, PassphrasePurpose::Create, label, &env_var, &mut SystemTerminal)
            .map_err(Failure::operational)?;
        Ok(passphrase)
    }
}

/// Parses one --gun-map entry, FROM=TO.
fn parse_gun_map(entry: &str) -> Result<(String, String), Failure> {
    let invalid = || Failure::usage(anyhow::anyhow!("invalid --gun-map {entry:?}: expected REGISTRY_PREFIX=GUN_PREFIX, such as localhost:5000=registry.example.com"));
    let (from, to) = entry.split_once('=').ok_or_else(invalid)?;
    let (from, to) = (from.trim_end_matches('/'), to.trim_end_matches('/'));
    if from.is_empty() || to.is_empty() {
        return Err(invalid());
    }
    Ok((from.to_owned(), to.to_owned()))
}

/// Maps a registry error to exit code 1, with a hint for the options that fix common cases.
pub fn registry_failure(error: RegistryError) -> Failure {
    let hint = match &error {
        RegistryError::PlainHttpRefused { host, .. } => Some(format!("if {host} only serves plain HTTP, pass --insecure-registry {host}")),
        RegistryError::UntrustedCertificate { .. } => Some("pass the registry's CA certificate with --registry-ca FILE".to_owned()),
        _ => None,
    };
    let failure = Failure::operational(error);
    match hint {
        Some(hint) => failure.with_hint(hint),
        None => failure,
    }
}

/// Reads an environment variable; passed to the passphrase code so it does not read the
/// environment itself.
fn env_var(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// Parses a repository argument, normalized like an image name (`nginx` is
/// `docker.io/library/nginx`).
pub fn parse_gun(text: &str) -> Result<Gun, Failure> {
    let reference = Reference::parse(text).map_err(Failure::usage)?;
    if reference.tag.is_some() || reference.digest.is_some() {
        return Err(Failure::usage(anyhow::anyhow!("expected a repository name without tag or digest, got {text:?}")));
    }
    Ok(reference.gun)
}

/// Parses `GUN:TAG`.
pub fn parse_tagged(text: &str) -> Result<(Gun, String), Failure> {
    let reference = Reference::parse(text).map_err(Failure::usage)?;
    match reference.tag {
        Some(tag) if reference.digest.is_none() => Ok((reference.gun, tag)),
        _ => Err(Failure::usage(anyhow::anyhow!("expected GUN:TAG, got {text:?}"))),
    }
}

pub async fn run(cli: Cli) -> CmdResult {
    let context = Context::from_cli(&cli)?;
    match cli.command {
        Command::Init(args) => publish::init(&context, args).await,
        Command::Sign(args) => publish::sign(&context, args).await,
        Command::Unsign(args) => publish::unsign(&context, args).await,
        Command::Publish(args) => publish::publish(&context, args).await,
        Command::Status(args) => publish::status(&context, args).await,
        Command::Resign(args) => publish::resign(&context, args).await,
        Command::Reset(args) => publish::reset(&context, args),
        Command::Lookup(args) => lookup::lookup(&context, args).await,
        Command::Verify(args) => lookup::verify(&context, args).await,
        Command::List(args) => lookup::list(&context, args).await,
        Command::Trust(command) => trust::run(&context, command).await,
        Command::Delete(args) => publish::delete(&context, args).await,
        Command::Key(command) => keys::run(&context, command).await,
        Command::Root(command) => root::run(&context, command).await,
        Command::Pin(args) => pin::run(&context, args).await,
        Command::Login(args) => login::login(&context, args).await,
        Command::Logout(args) => login::logout(&context, args),
    }
}
