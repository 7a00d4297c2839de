//! Embedded PostgreSQL: the private cluster that signet-server runs when no database URL
//! is configured, and that the tests start as throwaway clusters.
//!
//! This module finds the PostgreSQL binaries, creates the cluster on first use, starts it
//! with a Unix socket only (no TCP), attaches to it when another process already runs it,
//! and stops it. The cluster's base directory is normally the data directory and contains
//! `postgres/` (the cluster), `postgres.log` (the server log) and `run/` (the socket
//! directory). As root, PostgreSQL runs as the `postgres` user, or as `nobody` when that
//! user is missing. If that user cannot enter the data directory, the base directory is
//! `/var/lib/signet/clusters/<hash>` and `<data_dir>/postgres.location` stores the
//! cluster path for later runs.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

const PORT: u16 = 5432;
const DATABASE: &str = "signet";
const SUPERUSER: &str = "signet";
const FALLBACK_ROOT: &str = "/var/lib/signet/clusters";
/// Maximum length of a socket path: Linux `sun_path` is 108 bytes including the final NUL.
const MAX_SOCKET_PATH: usize = 107;
/// Timeout that pg_ctl gets for start and stop (`-t`), and the maximum wait for a server
/// that another process is starting or stopping.
const PG_CTL_TIMEOUT: Duration = Duration::from_secs(60);
/// Maximum run time of one child process (initdb, pg_ctl, single-user postgres).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// Serial number for the names of initdb staging directories.
static STAGING_SERIAL: AtomicU64 = AtomicU64::new(0);
/// Characters that stay unescaped when the socket directory goes into the URL query.
const PATH_CHARS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.');

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "PostgreSQL binaries initdb, pg_ctl and postgres were not found on PATH or under \
         /usr/lib/postgresql/*/bin; install them with `apt-get install postgresql` or \
         configure a database URL"
    )]
    BinariesNotFound,
    #[error(
        "running as root, but neither the `postgres` nor the `nobody` user is in /etc/passwd; \
         create a `postgres` user or run signet-server as a non-root user"
    )]
    NoServiceUser,
    #[error("data directory {0} is not valid UTF-8; choose a path that is")]
    NonUtf8Path(PathBuf),
    #[error("directory {path} is unsafe to use: {reason}; remove it and start again")]
    UnsafeDirectory { path: PathBuf, reason: String },
    #[error("failed to {action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed with {status}: {stderr_tail}")]
    CommandFailed {
        command: String,
        status: ExitStatus,
        stderr_tail: String,
    },
    #[error("timed out after {} s waiting for {action}", .timeout.as_secs())]
    Timeout { action: String, timeout: Duration },
    #[error("PostgreSQL failed to start for cluster {cluster}: {reason}\nlast lines of {log}:\n{log_tail}")]
    StartFailed {
        cluster: PathBuf,
        log: PathBuf,
        reason: String,
        log_tail: String,
    },
    #[error("cannot pause or resume the cluster at {0} because another process started it")]
    NotOwner(PathBuf),
}

/// Returns a closure that wraps an I/O error in `EmbeddedError::Io` with the action
/// "`verb` `path`".
fn io_error(verb: &str, path: &Path) -> impl FnOnce(std::io::Error) -> EmbeddedError {
    let action = format!("{verb} {}", path.display());
    move |source| EmbeddedError::Io { action, source }
}

/// Running embedded PostgreSQL server, either started by this value or attached to.
pub struct EmbeddedPostgres {
    cluster: Cluster,
    socket_dir: PathBuf,
    database_url: String,
    /// True when this value started the server, so that `stop` and `Drop` stop it.
    owned: bool,
}

impl EmbeddedPostgres {
    /// Starts (or attaches to) the cluster belonging to `data_dir`, creating `data_dir` and
    /// the cluster when they are missing.
    pub async fn start(data_dir: &Path) -> Result<EmbeddedPostgres, EmbeddedError> {
        Self::start_with(data_dir, false).await
    }

    /// Starts like [`start`](Self::start) but without crash safety: initdb skips fsync, and
    /// the server runs with fsync, synchronous_commit and full_page_writes off. A killed
    /// server can lose its last commits. Use it only for throwaway test clusters.
    pub async fn start_for_tests(data_dir: &Path) -> Result<EmbeddedPostgres, EmbeddedError> {
        Self::start_with(data_dir, true).await
    }

    async fn start_with(data_dir: &Path, for_tests: bool) -> Result<Self, EmbeddedError> {
        let cluster = Cluster::locate(data_dir, for_tests).await?;
        let deadline = Instant::now() + PG_CTL_TIMEOUT;
        let mut start_error = None;

        // Each pass returns, makes the only start attempt, or sleeps until the deadline.
        loop {
            match cluster.state().await? {
                // NOTE: attached values never stop the server, so a server whose owner died
                // without stopping it (SIGKILL) keeps running until someone runs pg_ctl stop.
                ServerState::Ready { socket_dir, port } => {
                    info!(data_dir = %cluster.data_dir.display(), socket_dir = %socket_dir.display(),
                        "attached to embedded PostgreSQL that another process started");
                    return Ok(Self::new(cluster, socket_dir, port, false));
                }
                ServerState::Stopped => {
                    if let Some(error) = start_error {
                        return Err(error);
                    }
                    match cluster.start_server().await {
                        Ok(socket_dir) => {
                            info!(data_dir = %cluster.data_dir.display(), socket_dir = %socket_dir.display(),
                                cluster = %cluster.dir.display(), "started embedded PostgreSQL");
                            return Ok(Self::new(cluster, socket_dir, PORT, true));
                        }
                        // Another process may have started the server first, so look again.
                        Err(error) => start_error = Some(error),
                    }
                }
                ServerState::Busy | ServerState::Unreaped if Instant::now() >= deadline => {
                    let action = format!(
                        "the server of {} to become ready, or its crashed process to be reaped",
                        cluster.dir.display()
                    );
                    let timeout = EmbeddedError::Timeout {
                        action,
                        timeout: PG_CTL_TIMEOUT,
                    };
                    return Err(start_error.unwrap_or(timeout));
                }
                ServerState::Busy | ServerState::Unreaped => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
            }
        }
    }

    fn new(cluster: Cluster, socket_dir: PathBuf, port: u16, owned: bool) -> Self {
        // Lossless: the data directory was checked to be UTF-8, and postmaster.pid is text.
        let host = socket_dir.to_string_lossy().into_owned();
        let host = utf8_percent_encode(&host, PATH_CHARS);
        let database_url =
            format!("postgres://{SUPERUSER}@localhost/{DATABASE}?host={host}&port={port}");
        Self {
            cluster,
            socket_dir,
            database_url,
            owned,
        }
    }

    /// sqlx/libpq connection URL that reaches the server over its Unix socket, for example
    /// `postgres://signet@localhost/signet?host=/data/run&port=5432`. It has no password.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Stops the cluster with `pg_ctl stop -m fast` if this value started it. Does nothing
    /// when attached to a cluster that another process started.
    pub async fn stop(mut self) -> Result<(), EmbeddedError> {
        if !self.owned {
            return Ok(());
        }
        self.cluster.stop_server().await?;
        // Drop must not stop the server a second time.
        self.owned = false;
        info!(data_dir = %self.cluster.data_dir.display(), socket_dir = %self.socket_dir.display(),
            "stopped embedded PostgreSQL");
        Ok(())
    }

    /// Stops the server but keeps ownership, so that [`resume`](Self::resume) can start it
    /// again. Tests use it to check that the app survives a database outage.
    pub async fn pause(&self) -> Result<(), EmbeddedError> {
        if !self.owned {
            return Err(EmbeddedError::NotOwner(self.cluster.dir.clone()));
        }
        self.cluster.stop_server().await?;
        info!(data_dir = %self.cluster.data_dir.display(), "paused embedded PostgreSQL");
        Ok(())
    }

    /// Starts the server again after [`pause`](Self::pause), on the same socket directory.
    pub async fn resume(&self) -> Result<(), EmbeddedError> {
        if !self.owned {
            return Err(EmbeddedError::NotOwner(self.cluster.dir.clone()));
        }
        let socket_dir = self.cluster.start_server().await?;
        info!(data_dir = %self.cluster.data_dir.display(), socket_dir = %socket_dir.display(),
            "resumed embedded PostgreSQL");
        Ok(())
    }
}

impl Drop for EmbeddedPostgres {
    /// Requests a fast shutdown of a server that this value started and `stop` did not
    /// stop. Drop cannot await, so pg_ctl returns without waiting for the shutdown (`-W`).
    fn drop(&mut self) {
        if !self.owned || !self.cluster.dir.join("postmaster.pid").exists() {
            return;
        }
        let mut stop = self.cluster.command("pg_ctl");
        stop.args(["stop", "-W", "-s", "-m", "fast", "-D"])
            .arg(&self.cluster.dir);
        stop.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let data_dir = self.cluster.data_dir.display();
        match stop.status() {
            Ok(status) if status.success() => {
                info!(%data_dir, "requested shutdown of embedded PostgreSQL on drop")
            }
            Ok(status) => warn!(%data_dir, %status, "pg_ctl stop failed on drop"),
            Err(error) => warn!(%data_dir, %error, "could not run pg_ctl stop on drop"),
        }
    }
}

enum ServerState {
    Stopped,
    /// Running but not accepting connections, for example while starting or stopping.
    Busy,
    /// Crashed, but its parent has not reaped the process yet, so pg_ctl and the lock file
    /// check still count it as running. A new server can start only after the reaping.
    Unreaped,
    Ready {
        socket_dir: PathBuf,
        port: u16,
    },
}

/// Paths and user of one cluster.
struct Cluster {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    /// Directory containing the cluster, its log and normally its socket directory.
    base: PathBuf,
    /// The cluster's data directory (PGDATA).
    dir: PathBuf,
    /// uid and gid that PostgreSQL runs as when this process runs as root.
    run_as: Option<(u32, u32)>,
    for_tests: bool,
}

impl Cluster {
    /// Finds the binaries and the cluster directory of `data_dir`, creating `data_dir`.
    async fn locate(data_dir: &Path, for_tests: bool) -> Result<Self, EmbeddedError> {
        let bin_dir = find_bin_dir()?;
        std::fs::create_dir_all(data_dir).map_err(io_error("create", data_dir))?;
        let data_dir = std::fs::canonicalize(data_dir).map_err(io_error("resolve", data_dir))?;
        if data_dir.to_str().is_none() {
            return Err(EmbeddedError::NonUtf8Path(data_dir));
        }

        let location_file = data_dir.join("postgres.location");
        let recorded = match std::fs::read_to_string(&location_file) {
            Ok(text) => Some(PathBuf::from(text.trim())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(io_error("read", &location_file)(error)),
        };
        let local = data_dir.join("postgres");
        let existing = recorded.clone().unwrap_or_else(|| local.clone());

        // As root, run as the owner of an existing cluster, else as the service user.
        let run_as = match effective_uid()? {
            0 => Some(match std::fs::metadata(&existing) {
                Ok(metadata) if metadata.uid() != 0 => (metadata.uid(), metadata.gid()),
                _ => service_user()?,
            }),
            _ => None,
        };

        let dir = match (recorded, run_as) {
            (Some(dir), _) if dir.is_absolute() && dir.parent().is_some_and(Path::is_dir) => dir,
            (_, None) => local,
            (None, Some(user)) if local.exists() || can_enter(user, &data_dir).await? => local,
            // Also reached when the recorded base directory is gone, for example after
            // /var/lib/signet was wiped: a new cluster is created there.
            (_, Some(user)) => {
                let dir = create_fallback_base(&data_dir, user)?.join("postgres");
                warn!(data_dir = %data_dir.display(), cluster = %dir.display(),
                    "placing the cluster outside the data directory, which the PostgreSQL user cannot enter");
                let location = format!("{}\n", dir.display());
                std::fs::write(&location_file, location)
                    .map_err(io_error("write", &location_file))?;
                dir
            }
        };
        let base = dir
            .parent()
            .map_or_else(|| data_dir.clone(), Path::to_path_buf);
        Ok(Self {
            bin_dir,
            data_dir,
            base,
            dir,
            run_as,
            for_tests,
        })
    }

    /// Builds a command for one of the PostgreSQL binaries that runs as the PostgreSQL
    /// user, without the caller's PG* environment variables.
    fn command(&self, binary: &str) -> std::process::Command {
        let mut command = std::process::Command::new(self.bin_dir.join(binary));
        command.current_dir("/");
        for (name, _) in std::env::vars_os() {
            if name.as_bytes().starts_with(b"PG") {
                command.env_remove(name);
            }
        }
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        command
    }

    async fn state(&self) -> Result<ServerState, EmbeddedError> {
        if !self.dir.join("PG_VERSION").exists() {
            return Ok(ServerState::Stopped);
        }
        let mut status = self.command("pg_ctl");
        status.args(["status", "-D"]).arg(&self.dir);
        // pg_ctl status exits with 3 when no server runs and 4 without a data directory.
        let output = run(status, None, false).await?;
        match output.status.code() {
            Some(0) => {}
            Some(3) | Some(4) => return Ok(ServerState::Stopped),
            _ => {
                let command = format!("pg_ctl status -D {}", self.dir.display());
                let stderr_tail = output_tail(&output);
                return Err(EmbeddedError::CommandFailed {
                    command,
                    status: output.status,
                    stderr_tail,
                });
            }
        }

        // postmaster.pid lines since PostgreSQL 10 (src/include/utils/pidfile.h): PID, data
        // directory, start time, port, first socket directory, listen address, shared
        // memory key, status.
        let Ok(pid_file) = std::fs::read_to_string(self.dir.join("postmaster.pid")) else {
            return Ok(ServerState::Busy);
        };
        let lines: Vec<&str> = pid_file.lines().map(str::trim).collect();
        if lines.first().is_some_and(|pid| is_zombie(pid)) {
            return Ok(ServerState::Unreaped);
        }
        let port = lines.get(3).and_then(|line| line.parse::<u16>().ok());
        let socket_dir = lines.get(4).filter(|line| !line.is_empty());
        let (Some(port), Some(socket_dir), Some(&"ready")) = (port, socket_dir, lines.get(7))
        else {
            return Ok(ServerState::Busy);
        };

        // Only a socket that accepts a connection proves that the server is up.
        let socket = Path::new(socket_dir).join(format!(".s.PGSQL.{port}"));
        let connect = tokio::net::UnixStream::connect(&socket);
        match tokio::time::timeout(Duration::from_secs(1), connect).await {
            Ok(Ok(_)) => Ok(ServerState::Ready {
                socket_dir: PathBuf::from(socket_dir),
                port,
            }),
            _ => Ok(ServerState::Busy),
        }
    }

    /// Initializes the cluster when needed, starts the server and returns its socket
    /// directory.
    async fn start_server(&self) -> Result<PathBuf, EmbeddedError> {
        if !self.dir.join("PG_VERSION").exists() {
            self.initialize().await?;
        }
        let socket_dir = self.prepare_socket_dir()?;
        self.write_settings(&socket_dir)?;
        let log = self.base.join("postgres.log");
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true).mode(0o600);
        options
            .open(&log)
            .map_err(io_error("create server log", &log))?;
        self.give_to_run_as(&log)?;

        // pg_ctl (PostgreSQL 15) starts the server in a session of its own, so a terminal's
        // Ctrl-C reaches only the app, which can then stop the server in order.
        let mut start = self.command("pg_ctl");
        start.args([
            "start",
            "-w",
            "-s",
            "-t",
            &PG_CTL_TIMEOUT.as_secs().to_string(),
        ]);
        start.arg("-D").arg(&self.dir).arg("-l").arg(&log);
        let output = run(start, None, false).await?;
        if !output.status.success() {
            let reason = output_tail(&output);
            let log_tail = log_tail(&log);
            return Err(EmbeddedError::StartFailed {
                cluster: self.dir.clone(),
                log,
                reason,
                log_tail,
            });
        }
        Ok(socket_dir)
    }

    /// Stops the server if one runs. A server that crashed counts as stopped.
    async fn stop_server(&self) -> Result<(), EmbeddedError> {
        let is_down =
            |state: ServerState| matches!(state, ServerState::Stopped | ServerState::Unreaped);
        if is_down(self.state().await?) {
            return Ok(());
        }
        let timeout = PG_CTL_TIMEOUT.as_secs().to_string();
        let mut stop = self.command("pg_ctl");
        stop.args(["stop", "-w", "-s", "-m", "fast", "-t", &timeout])
            .arg("-D")
            .arg(&self.dir);
        let result = run(stop, None, true).await;
        // pg_ctl stop fails when the server dies without removing postmaster.pid, for
        // example after a crash during the stop. The server is down all the same.
        if result.is_err() && is_down(self.state().await?) {
            return Ok(());
        }
        result.map(drop)
    }

    /// Runs initdb in a staging directory and renames the result into place. A crash
    /// leaves at most a staging directory, never a half-made cluster, and two processes
    /// that start at once do not initialize the same directory.
    /// NOTE: staging directories left by a crash are not removed later.
    async fn initialize(&self) -> Result<(), EmbeddedError> {
        // The process ID and a counter make the name unique among all running processes.
        let serial = STAGING_SERIAL.fetch_add(1, Ordering::Relaxed);
        let staging = self
            .base
            .join(format!("postgres.initdb-{}-{serial}", std::process::id()));
        create_private_dir(&staging, self.run_as)?;
        info!(cluster = %self.dir.display(), "creating embedded PostgreSQL cluster");
        let mut result = self.initialize_in(&staging).await;
        if result.is_ok() {
            // Losing the race to a concurrent start is fine, any other failure is not.
            if let Err(error) = std::fs::rename(&staging, &self.dir) {
                if !self.dir.join("PG_VERSION").exists() {
                    let action = format!(
                        "move the new cluster to {} (if that directory exists, move it away)",
                        self.dir.display()
                    );
                    result = Err(EmbeddedError::Io {
                        action,
                        source: error,
                    });
                }
            }
        }
        if staging.exists() {
            if let Err(error) = std::fs::remove_dir_all(&staging) {
                warn!(staging = %staging.display(), %error, "could not remove staging directory");
            }
        }
        result
    }

    async fn initialize_in(&self, staging: &Path) -> Result<(), EmbeddedError> {
        // NOTE: trust authentication is safe only because the server has no TCP listener
        // and its socket directory is mode 0700 and owned by the PostgreSQL user, so only
        // that user and root can connect. When not root, that user is the current user.
        let mut initdb = self.command("initdb");
        initdb
            .arg("-D")
            .arg(staging)
            .args(["-U", SUPERUSER, "--encoding=UTF8", "--locale=C"]);
        initdb.args(["--auth-local=trust", "--auth-host=reject"]);
        if self.for_tests {
            initdb.arg("--no-sync");
        }
        run(initdb, None, true).await?;

        let config = staging.join("postgresql.conf");
        let append_include = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new().append(true).open(&config)?;
            file.write_all(b"\n# Written by signet-server before each start.\n")?;
            file.write_all(b"include_if_exists = 'signet.conf'\n")
        };
        append_include().map_err(io_error("append to", &config))?;

        // Single-user mode creates the database before any server listens. exit_on_error
        // turns an SQL error into a non-zero exit status.
        let mut single = self.command("postgres");
        single
            .arg("--single")
            .arg("-D")
            .arg(staging)
            .args(["-c", "exit_on_error=on"]);
        if self.for_tests {
            single.arg("-F");
        }
        single.arg("postgres");
        run(
            single,
            Some(&format!("CREATE DATABASE {DATABASE};\n")),
            true,
        )
        .await
        .map(drop)
    }

    /// Returns `<base>/run` when its socket path fits in `sun_path`, else a short
    /// directory under /tmp, and creates it mode 0700 for the PostgreSQL user.
    fn prepare_socket_dir(&self) -> Result<PathBuf, EmbeddedError> {
        let local = self.base.join("run");
        let socket_path_len = local.join(format!(".s.PGSQL.{PORT}")).as_os_str().len();
        let socket_dir = if socket_path_len <= MAX_SOCKET_PATH {
            local
        } else {
            PathBuf::from(format!("/tmp/signet-pg-{}", short_hash(&self.dir)))
        };
        create_private_dir(&socket_dir, self.run_as)?;
        Ok(socket_dir)
    }

    fn write_settings(&self, socket_dir: &Path) -> Result<(), EmbeddedError> {
        let quoted_dir = socket_dir
            .to_string_lossy()
            .replace('\\', "\\\\")
            .replace('\'', "''");
        let mut settings = format!(
            "# Written by signet-server before each start; edits are overwritten.\n\
             listen_addresses = ''\nport = {PORT}\nunix_socket_directories = '{quoted_dir}'\n\
             unix_socket_permissions = 0700\n"
        );
        if self.for_tests {
            settings.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let path = self.dir.join("signet.conf");
        std::fs::write(&path, settings).map_err(io_error("write", &path))?;
        self.give_to_run_as(&path)
    }

    fn give_to_run_as(&self, path: &Path) -> Result<(), EmbeddedError> {
        let Some((uid, gid)) = self.run_as else {
            return Ok(());
        };
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(io_error(&format!("change the owner to uid {uid} of"), path))
    }
}

/// Returns the directory that contains initdb, pg_ctl and postgres: the first PATH entry with
/// all three, else the highest version under /usr/lib/postgresql.
fn find_bin_dir() -> Result<PathBuf, EmbeddedError> {
    let has_all = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|name| dir.join(name).is_file())
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(dir) = std::env::split_paths(&path).find(|dir| dir.is_absolute() && has_all(dir)) {
        return Ok(dir);
    }
    let entries =
        std::fs::read_dir("/usr/lib/postgresql").map_err(|_| EmbeddedError::BinariesNotFound)?;
    let versions = entries.filter_map(|entry| {
        let entry = entry.ok()?;
        let name = entry.file_name();
        let version: Vec<u32> = name
            .to_str()?
            .split('.')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        let bin_dir = entry.path().join("bin");
        has_all(&bin_dir).then_some((version, bin_dir))
    });
    versions
        .max()
        .map(|(_, bin_dir)| bin_dir)
        .ok_or(EmbeddedError::BinariesNotFound)
}

/// Returns the effective uid, read as the owner of /proc/self because `libc::geteuid`
/// needs `unsafe`.
fn effective_uid() -> Result<u32, EmbeddedError> {
    let proc_self = Path::new("/proc/self");
    Ok(std::fs::metadata(proc_self)
        .map_err(io_error("read the owner of", proc_self))?
        .uid())
}

/// Returns uid and gid of `postgres`, else of `nobody`, from /etc/passwd.
/// NOTE: users that only an NSS service such as LDAP provides are not found.
fn service_user() -> Result<(u32, u32), EmbeddedError> {
    let passwd_path = Path::new("/etc/passwd");
    let passwd = std::fs::read_to_string(passwd_path).map_err(io_error("read", passwd_path))?;
    let find = |name: &str| {
        passwd.lines().find_map(
            |line| match line.split(':').collect::<Vec<_>>().as_slice() {
                [user, _, uid, gid, ..] if *user == name => {
                    Some((uid.parse().ok()?, gid.parse().ok()?))
                }
                _ => None,
            },
        )
    };
    find("postgres")
        .or_else(|| find("nobody"))
        .ok_or(EmbeddedError::NoServiceUser)
}

/// Checks whether `user` can enter `dir`, by letting a shell running as that user try.
async fn can_enter(user: (u32, u32), dir: &Path) -> Result<bool, EmbeddedError> {
    let mut shell = std::process::Command::new("/bin/sh");
    shell.args(["-c", "cd -- \"$1\"", "sh"]).arg(dir);
    shell.current_dir("/").uid(user.0).gid(user.1);
    Ok(run(shell, None, false).await?.status.success())
}

/// Creates `/var/lib/signet/clusters/<hash of data_dir>`, owned by `user` and mode 0700,
/// with parents that everyone can enter.
fn create_fallback_base(data_dir: &Path, user: (u32, u32)) -> Result<PathBuf, EmbeddedError> {
    let root = Path::new(FALLBACK_ROOT);
    std::fs::create_dir_all(root).map_err(io_error("create", root))?;
    for dir in [root.parent().unwrap_or(root), root] {
        let mode = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(dir, mode).map_err(io_error("set mode 0755 on", dir))?;
    }
    let base = root.join(short_hash(data_dir));
    create_private_dir(&base, Some(user))?;
    Ok(base)
}

/// Creates `path` mode 0700 and owned by `run_as`. An existing directory must not be a
/// symbolic link and must belong to this process or to `run_as`.
fn create_private_dir(path: &Path, run_as: Option<(u32, u32)>) -> Result<(), EmbeddedError> {
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Err(error) if error.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(io_error("create directory", path)(error));
        }
        _ => {}
    }
    let metadata = std::fs::symlink_metadata(path).map_err(io_error("inspect", path))?;
    let reason = if !metadata.is_dir() {
        Some("it is not a directory, or it is a symbolic link".to_string())
    } else if metadata.uid() != effective_uid()?
        && Some(metadata.uid()) != run_as.map(|(uid, _)| uid)
    {
        Some(format!("it is owned by uid {}", metadata.uid()))
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(EmbeddedError::UnsafeDirectory {
            path: path.to_path_buf(),
            reason,
        });
    }
    if let Some((uid, gid)) = run_as {
        let verb = format!("change the owner to uid {uid} of");
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io_error(&verb, path))?;
    }
    let mode = std::fs::Permissions::from_mode(0o700);
    std::fs::set_permissions(path, mode).map_err(io_error("set mode 0700 on", path))
}

/// Checks whether process `pid` has exited but is not yet reaped by its parent.
fn is_zombie(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state letter follows the command name, which is in parentheses.
    stat.rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}

/// Returns the first 16 hex digits of the SHA-256 of `path`, which stay stable across runs.
fn short_hash(path: &Path) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, path.as_os_str().as_bytes());
    hex::encode(&digest.as_ref()[..8])
}

/// Runs `command` with `input` on stdin and returns its output. With `check`, a non-zero
/// exit status becomes `CommandFailed`.
async fn run(
    command: std::process::Command,
    input: Option<&str>,
    check: bool,
) -> Result<Output, EmbeddedError> {
    let mut words = vec![command.get_program().to_string_lossy()];
    words.extend(command.get_args().map(|arg| arg.to_string_lossy()));
    let description = words.join(" ");

    let mut command = tokio::process::Command::from(command);
    command.stdin(input.map_or_else(Stdio::null, |_| Stdio::piped()));
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let io_error = |verb: &str| {
        let action = format!("{verb} `{description}`");
        move |source| EmbeddedError::Io { action, source }
    };
    let mut child = command.spawn().map_err(io_error("run"))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(input.as_bytes())
            .await
            .map_err(io_error("write to"))?;
    }
    let output = match tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output()).await {
        Ok(output) => output.map_err(io_error("wait for"))?,
        Err(_) => {
            let action = format!("`{description}` to exit");
            return Err(EmbeddedError::Timeout {
                action,
                timeout: COMMAND_TIMEOUT,
            });
        }
    };
    if check && !output.status.success() {
        let stderr_tail = output_tail(&output);
        return Err(EmbeddedError::CommandFailed {
            command: description,
            status: output.status,
            stderr_tail,
        });
    }
    Ok(output)
}

/// Returns the last lines of stderr, or of stdout when stderr is empty.
fn output_tail(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.trim().is_empty() {
        return last_lines(&String::from_utf8_lossy(&output.stdout));
    }
    last_lines(&stderr)
}

/// Returns the last lines of the server log, or why they could not be read.
fn log_tail(log: &Path) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = std::fs::File::open(log)?;
        let length = file.metadata()?.len();
        file.seek(SeekFrom::Start(length.saturating_sub(8192)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    read().map_or_else(
        |error| format!("(could not read the log: {error})"),
        |text| last_lines(&text),
    )
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
