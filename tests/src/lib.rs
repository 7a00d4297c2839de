//! Test harness for end-to-end tests: throwaway PostgreSQL clusters, real `signet-server`
//! processes on 127.0.0.1, and signed TUF metadata built with real keys.

pub mod cli;
pub mod metadata;
pub mod registry;
pub mod tokens;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context};
use signet_server::embedded::EmbeddedPostgres;

/// Key encryption key shared by every server a test starts, so several processes can use the
/// same database.
pub const TEST_KEK: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

/// Builds the workspace's binaries once per test process and returns the path of `name`.
/// Building here keeps the binaries in step with the sources even when only `cargo test` ran.
fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--workspace", "--bins"])
            .status()
            .expect("failed to run cargo build for the binaries");
        assert!(status.success(), "cargo build of the binaries failed");
    });
    let exe = std::env::current_exe().expect("test executable path");
    // The test executable is target/<profile>/deps/NAME; the binaries are in target/<profile>/.
    let profile_dir = exe.parent().and_then(Path::parent).expect("target profile directory");
    profile_dir.join(name)
}

/// Path of the `signet-server` binary, built on first use.
pub fn server_binary() -> PathBuf {
    binary("signet-server")
}

/// Path of the `signet-tuf-client` conformance adapter, built on first use.
pub fn conformance_binary() -> PathBuf {
    binary("signet-tuf-client")
}

/// Path of the `signet` client binary, built on first use.
pub fn client_binary() -> PathBuf {
    binary("signet")
}

/// A throwaway PostgreSQL cluster. The shared one lives for the whole test process; a
/// watchdog stops it when the process exits.
pub struct TestCluster {
    pub postgres: EmbeddedPostgres,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    /// Starts a cluster of its own, for tests that stop and start the database.
    pub async fn dedicated() -> anyhow::Result<TestCluster> {
        let dir = world_readable_tempdir()?;
        let postgres = EmbeddedPostgres::start_for_tests(dir.path()).await.context("failed to start test cluster")?;
        Ok(TestCluster { postgres, _dir: dir })
    }

    /// Creates a fresh database in this cluster and returns its URL.
    pub async fn create_database(&self) -> anyhow::Result<String> {
        create_database(self.postgres.database_url()).await
    }
}

/// Returns the URL of the shared cluster's maintenance database, starting the cluster on first use.
fn shared_cluster_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        // Started on a thread of its own: the caller may be inside a tokio runtime.
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            runtime.block_on(async {
                let dir = world_readable_tempdir().expect("temporary directory");
                let postgres = EmbeddedPostgres::start_for_tests(dir.path()).await.expect("failed to start test cluster");
                let url = postgres.database_url().to_owned();
                stop_cluster_on_exit(&dir.path().join("postgres"));
                // The cluster and its directory must outlive this thread: the watchdog stops
                // the server and the directory is left for the system's temporary cleanup.
                std::mem::forget(postgres);
                std::mem::forget(dir);
                url
            })
        })
        .join()
        .expect("cluster start thread")
    })
    .clone()
}

/// Creates a fresh database in the shared cluster and returns its URL.
pub async fn fresh_database() -> anyhow::Result<String> {
    let url = shared_cluster_url();
    create_database(&url).await
}

async fn create_database(maintenance_url: &str) -> anyhow::Result<String> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!("test_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
    let pool = sqlx::PgPool::connect(maintenance_url).await.context("connect to test cluster")?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool).await.context("create test database")?;
    pool.close().await;
    Ok(maintenance_url.replacen("/signet?", &format!("/{name}?"), 1))
}

/// Creates a temporary directory that the PostgreSQL user can enter when the tests run as root.
pub fn world_readable_tempdir() -> anyhow::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix("signet-test-").tempdir()?;
    // The cluster runs as the postgres user when tests run as root; it must reach the directory.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// Starts a shell that waits for this process to exit, then fast-stops the cluster.
fn stop_cluster_on_exit(cluster_dir: &Path) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         kill -INT \"$(head -n 1 '{dir}/postmaster.pid' 2>/dev/null)\" 2>/dev/null; exit 0",
        pid = std::process::id(),
        dir = cluster_dir.display()
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

/// A running `signet-server` process. Stopped (SIGKILL) when dropped.
pub struct ServerProcess {
    child: Child,
    pub base_url: String,
    pub data_dir: tempfile::TempDir,
    logs: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts a server on the given database with extra command-line arguments.
    pub fn start(database_url: &str, extra_args: &[&str]) -> anyhow::Result<ServerProcess> {
        let data_dir = world_readable_tempdir()?;
        ServerProcess::start_in(data_dir, Some(database_url), extra_args)
    }

    /// Starts a server in `data_dir`; without a database URL it runs the embedded PostgreSQL.
    pub fn start_in(data_dir: tempfile::TempDir, database_url: Option<&str>, extra_args: &[&str]) -> anyhow::Result<ServerProcess> {
        let mut command = Command::new(server_binary());
        command
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir.path())
            .args(extra_args)
            .env("SIGNET_KEY_ENCRYPTION_KEY", TEST_KEK)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("SIGNET_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        let mut child = command.spawn().context("failed to start signet-server")?;
        let stderr = child.stderr.take().context("server stderr")?;

        // Read stderr on a thread: wait for the start line, then keep collecting the log.
        let logs = Arc::new(Mutex::new(String::new()));
        let (sender, receiver) = std::sync::mpsc::channel();
        let thread_logs = logs.clone();
        std::thread::spawn(move || {
            let mut sender = Some(sender);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line.split("listen=").nth(1).filter(|_| line.contains("signet-server started")) {
                    let address = address.split_whitespace().next().unwrap_or_default().to_owned();
                    if let Some(sender) = sender.take() {
                        let _ = sender.send((address, line.contains("tls=true")));
                    }
                }
                let mut logs = thread_logs.lock().unwrap_or_else(|p| p.into_inner());
                logs.push_str(&line);
                logs.push('\n');
            }
        });

        match receiver.recv_timeout(Duration::from_secs(120)) {
            Ok((address, https)) => {
                let scheme = if https { "https" } else { "http" };
                Ok(ServerProcess { child, base_url: format!("{scheme}://{address}"), data_dir, logs })
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let logs = logs.lock().unwrap_or_else(|p| p.into_inner()).clone();
                bail!("signet-server did not start; its log:\n{logs}")
            }
        }
    }

    /// Process id, for sending signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to stderr so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sends SIGTERM and waits for a graceful exit.
    pub fn stop(mut self) -> anyhow::Result<std::process::ExitStatus> {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("signet-server did not exit within 30 s of SIGTERM")
    }

    /// Stops the server and returns its data directory, for a restart on the same data.
    pub fn stop_keep_data(mut self) -> anyhow::Result<tempfile::TempDir> {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        for _ in 0..300 {
            if self.child.try_wait()?.is_some() {
                let placeholder = tempfile::tempdir()?;
                return Ok(std::mem::replace(&mut self.data_dir, placeholder));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("signet-server did not exit within 30 s of SIGTERM")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// URL of a file under `/v2/{gun}/_trust/tuf/`.
    pub fn tuf_url(&self, gun: &str, file: &str) -> String {
        format!("{}/v2/{gun}/_trust/tuf/{file}", self.base_url)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
