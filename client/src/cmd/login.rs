//! `signet login|logout`: the user name and password that the client exchanges for a token at
//! the trust server's token service.

use std::io::{BufRead as _, Read as _, Write as _};

use clap::Args;
use signet_client::auth::{self, CredentialStore, Credentials, LoginCheck};
use zeroize::Zeroizing;

use super::{CmdResult, Context, Failure};

/// Maximum length of a password read from standard input, in bytes.
const MAX_PASSWORD_BYTES: u64 = 4096;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Trust server URL [default: the --server value].
    server: Option<String>,

    /// User name for the token service, asked for on the terminal when missing.
    #[arg(long, value_name = "USER")]
    username: Option<String>,

    /// Read the password from standard input (up to the first newline) instead of asking for it
    /// on the terminal.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Trust server URL [default: the --server value].
    server: Option<String>,
}

/// Checks the credentials against the token service that the server names in its Bearer
/// challenge, then stores them. Nothing is stored when the check fails.
pub async fn login(context: &Context, args: LoginArgs) -> CmdResult {
    let server = args.server.as_deref().unwrap_or(&context.server).trim_end_matches('/').to_owned();
    let key = auth::server_key(&server).map_err(Failure::usage)?;

    let username = match args.username {
        Some(username) => username,
        None if args.password_stdin => {
            return Err(Failure::usage(anyhow::anyhow!("--password-stdin needs --username, because standard input carries the password")));
        }
        None => prompt_username()?,
    };
    if username.is_empty() || username.contains(':') {
        return Err(Failure::usage(anyhow::anyhow!("invalid user name {username:?}: it must be non-empty and contain no ':'")));
    }
    let password = if args.password_stdin { read_password_stdin()? } else { prompt_password()? };
    if password.is_empty() {
        return Err(Failure::usage(anyhow::anyhow!("the password is empty")));
    }
    let credentials = Credentials { username, password };

    let options = signet_client::remote::RemoteOptions::new(Default::default(), context.ca_certificates()?);
    let http = options.http_client().map_err(Failure::operational)?;
    let check = auth::check_login(&http, &server, &credentials).await.map_err(|error| {
        let rejected = matches!(error, auth::AuthError::CredentialsRejected { .. });
        let failure = Failure::operational(anyhow::Error::new(error).context(format!("login to {server} failed")));
        if rejected {
            failure.with_hint("check the user name and password; nothing was stored")
        } else {
            failure
        }
    })?;

    let realm = match check {
        LoginCheck::Verified { realm } => realm,
        // Credentials are only ever used with a token service, so storing them for a server
        // without one would only hide the real problem.
        LoginCheck::NotChecked => {
            return Err(Failure::operational(anyhow::anyhow!(
                "{server} names no token service: its response to GET /v2/ has no Bearer challenge whose realm is a URL; nothing was stored"
            ))
            .with_hint("for a server with built-in tokens, pass the token from its operator with --token or SIGNET_TOKEN"));
        }
    };
    let store = CredentialStore::new(&context.home);
    store.store(&server, &credentials).map_err(Failure::operational)?;
    eprintln!("login succeeded: the token service at {realm} accepted user {:?}", credentials.username);
    eprintln!("stored the credentials for {key} in {}", store.path().display());
    Ok(())
}

/// Removes the stored credentials for the server. Succeeds when none were stored.
pub fn logout(context: &Context, args: LogoutArgs) -> CmdResult {
    let server = args.server.as_deref().unwrap_or(&context.server);
    let key = auth::server_key(server).map_err(Failure::usage)?;
    let store = CredentialStore::new(&context.home);
    if store.remove(server).map_err(Failure::operational)? {
        eprintln!("removed the credentials for {key} from {}", store.path().display());
    } else {
        eprintln!("no credentials stored for {key}");
    }
    Ok(())
}

fn prompt_username() -> Result<String, Failure> {
    eprint!("Username: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| Failure::usage(anyhow::Error::new(error).context("failed to read the user name from standard input")))?;
    Ok(line.trim().to_owned())
}

fn prompt_password() -> Result<Zeroizing<String>, Failure> {
    rpassword::prompt_password("Password: ").map(Zeroizing::new).map_err(|error| {
        Failure::usage(anyhow::Error::new(error).context("failed to read the password from the terminal"))
            .with_hint("without a terminal, pass --username USER --password-stdin")
    })
}

/// Reads the password from standard input, up to the first newline.
fn read_password_stdin() -> Result<Zeroizing<String>, Failure> {
    let mut bytes = Zeroizing::new(Vec::new());
    std::io::stdin()
        .lock()
        .take(MAX_PASSWORD_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| Failure::usage(anyhow::Error::new(error).context("failed to read the password from standard input")))?;
    if bytes.len() as u64 > MAX_PASSWORD_BYTES {
        return Err(Failure::usage(anyhow::anyhow!("the password on standard input is longer than {MAX_PASSWORD_BYTES} bytes")));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| Failure::usage(anyhow::anyhow!("the password on standard input is not UTF-8")))?;
    let line = text.split('\n').next().unwrap_or_default().trim_end_matches('\r');
    Ok(Zeroizing::new(line.to_owned()))
}
