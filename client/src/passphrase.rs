//! Passphrases that unlock private keys in the key store, and where they come from.
//!
//! For a key of role R (`ROOT`, `TARGETS`, `SNAPSHOT` or `DELEGATION`), the passphrase is read from
//! the first of these that applies:
//! 1. the environment variable `SIGNET_<R>_PASSPHRASE`, used as is;
//! 2. the file named by `SIGNET_<R>_PASSPHRASE_FILE`, with one trailing newline removed;
//! 3. a prompt on the terminal without echo, asked twice when a new key is created.
//!
//! Setting both variables of one role is an error, and so is an empty passphrase from any source.
//! With neither variable set and standard input not a terminal, reading fails with an error that
//! names both variables. Only `main` reads the process environment, so callers pass the lookup in
//! as a function (`&|name| std::env::var_os(name)`), and tests pass a map.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::keystore::KeyRole;

/// Maximum size of a passphrase file in bytes. A larger file is rejected, so pointing the
/// variable at a device or a large file by mistake fails at once.
pub const MAX_PASSPHRASE_FILE_LEN: u64 = 64 * 1024;

/// A passphrase. Its memory is overwritten with zeros when it is dropped, and `Debug` prints
/// `Passphrase(<redacted>)`. There is no `Display`, so the text leaves only through
/// [`Passphrase::expose_secret`].
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps `text`, taking ownership so that no unzeroized copy is left behind by this call.
    pub fn new(text: String) -> Passphrase {
        Passphrase(Zeroizing::new(text))
    }

    /// The passphrase text, for the key derivation function and nothing else.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// The use of a requested passphrase. On the terminal, a passphrase for a new key is asked for
/// twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassphrasePurpose {
    /// Unlock an existing key.
    Unlock,
    /// Encrypt a new or imported key.
    Create,
}

/// The origin of a passphrase. `Display` names the variable or file, never the passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassphraseSource {
    /// The environment variable `var`, such as `SIGNET_ROOT_PASSPHRASE`.
    Env { var: String },
    /// The file `path`, named by the environment variable `var`, such as
    /// `SIGNET_ROOT_PASSPHRASE_FILE`.
    File { var: String, path: PathBuf },
    /// An interactive prompt on the terminal.
    Terminal,
}

impl fmt::Display for PassphraseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PassphraseSource::Env { var } => write!(f, "{var}"),
            PassphraseSource::File { var, path } => write!(f, "file {} named by {var}", path.display()),
            PassphraseSource::Terminal => f.write_str("the terminal"),
        }
    }
}

/// A failure to obtain a passphrase. No variant carries the passphrase or the contents of a
/// passphrase file.
#[derive(Debug, thiserror::Error)]
pub enum PassphraseError {
    #[error("both {var} and {file_var} are set; set only one of them")]
    BothSet { var: String, file_var: String },

    #[error("{var} is not valid UTF-8; a passphrase must be UTF-8 text")]
    NotUnicode { var: String },

    #[error("failed to read passphrase file {} (from {var})", path.display())]
    ReadFile {
        var: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("invalid passphrase file {} (from {var}): {reason}", path.display())]
    InvalidFile { var: String, path: PathBuf, reason: &'static str },

    #[error("the passphrase from {origin} is empty; a key store passphrase must not be empty")]
    Empty { origin: PassphraseSource },

    #[error(
        "no passphrase for the {role} key: {var} and {file_var} are not set, and standard input is \
         not a terminal to prompt on; set {var} to the passphrase or {file_var} to a file that \
         contains it"
    )]
    NoTerminal { role: KeyRole, var: String, file_var: String },

    #[error("failed to read the passphrase from the terminal")]
    Prompt(#[source] io::Error),

    #[error("the two passphrases entered do not match; nothing was changed")]
    Mismatch,
}

/// The terminal that passphrases are prompted on. [`SystemTerminal`] is the real one, and tests
/// substitute a scripted one.
pub trait Terminal {
    /// Returns whether a person can be prompted, which for the real terminal means standard input
    /// is a terminal.
    fn is_interactive(&self) -> bool;

    /// Writes `prompt` and reads one line without echoing it.
    fn read_hidden(&mut self, prompt: &str) -> io::Result<Passphrase>;
}

/// The process's controlling terminal, read through `rpassword` with echo turned off.
#[derive(Debug, Default)]
pub struct SystemTerminal;

impl Terminal for SystemTerminal {
    fn is_interactive(&self) -> bool {
        io::stdin().is_terminal()
    }

    fn read_hidden(&mut self, prompt: &str) -> io::Result<Passphrase> {
        rpassword::prompt_password(prompt).map(Passphrase::new)
    }
}

/// Returns `SIGNET_<ROLE>_PASSPHRASE` for `role`, such as `SIGNET_ROOT_PASSPHRASE`.
pub fn passphrase_var(role: KeyRole) -> String {
    format!("SIGNET_{}_PASSPHRASE", role.name().to_ascii_uppercase())
}

/// Returns `SIGNET_<ROLE>_PASSPHRASE_FILE` for `role`.
pub fn passphrase_file_var(role: KeyRole) -> String {
    format!("{}_FILE", passphrase_var(role))
}

/// Reads the passphrase for a key of `role` from the environment variable, the passphrase file
/// or the terminal, in that order, as the module documentation describes. `key_label` names the
/// key in prompts, for example `root key 1f2e3d4c` or `new targets key for example.com/app`.
/// `env` looks up an environment variable.
///
/// Returns the passphrase with its source, so a caller can name the source when the passphrase
/// turns out to be wrong.
pub fn read_passphrase(
    role: KeyRole,
    purpose: PassphrasePurpose,
    key_label: &str,
    env: &dyn Fn(&str) -> Option<OsString>,
    terminal: &mut dyn Terminal,
) -> Result<(Passphrase, PassphraseSource), PassphraseError> {
    let var = passphrase_var(role);
    let file_var = passphrase_file_var(role);

    let (passphrase, source) = match (env(&var), env(&file_var)) {
        (Some(_), Some(_)) => return Err(PassphraseError::BothSet { var, file_var }),
        (Some(value), None) => {
            let text = value.into_string().map_err(|_| PassphraseError::NotUnicode { var: var.clone() })?;
            (Passphrase::new(text), PassphraseSource::Env { var })
        }
        (None, Some(path)) => {
            let path = PathBuf::from(path);
            let passphrase = read_passphrase_file(&file_var, &path)?;
            (passphrase, PassphraseSource::File { var: file_var, path })
        }
        (None, None) => {
            if !terminal.is_interactive() {
                return Err(PassphraseError::NoTerminal { role, var, file_var });
            }
            (prompt(purpose, key_label, terminal)?, PassphraseSource::Terminal)
        }
    };

    if passphrase.is_empty() {
        return Err(PassphraseError::Empty { origin: source });
    }
    Ok((passphrase, source))
}

/// Reads a passphrase file and removes one trailing `\n` or `\r\n`, which editors and `echo`
/// add. Other whitespace is part of the passphrase.
fn read_passphrase_file(var: &str, path: &Path) -> Result<Passphrase, PassphraseError> {
    let read_error = |source| PassphraseError::ReadFile { var: var.to_owned(), path: path.to_owned(), source };
    let invalid = |reason| PassphraseError::InvalidFile { var: var.to_owned(), path: path.to_owned(), reason };

    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_PASSPHRASE_FILE_LEN + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() as u64 > MAX_PASSPHRASE_FILE_LEN {
        return Err(invalid("the file is larger than 64 KiB"));
    }

    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }

    let text = std::str::from_utf8(&bytes).map_err(|_| invalid("the file is not UTF-8 text"))?;
    Ok(Passphrase::new(text.to_owned()))
}

/// Prompts once to unlock a key, or twice to create one, and rejects two different entries.
fn prompt(
    purpose: PassphrasePurpose,
    key_label: &str,
    terminal: &mut dyn Terminal,
) -> Result<Passphrase, PassphraseError> {
    match purpose {
        PassphrasePurpose::Unlock => {
            terminal.read_hidden(&format!("Passphrase for {key_label}: ")).map_err(PassphraseError::Prompt)
        }
        PassphrasePurpose::Create => {
            let first = terminal
                .read_hidden(&format!("Enter a passphrase for {key_label}: "))
                .map_err(PassphraseError::Prompt)?;
            let second = terminal
                .read_hidden(&format!("Repeat the passphrase for {key_label}: "))
                .map_err(PassphraseError::Prompt)?;
            if first.expose_secret() != second.expose_secret() {
                return Err(PassphraseError::Mismatch);
            }
            Ok(first)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::{HashMap, VecDeque};

    use super::*;

    const SECRET: &str = "correct horse battery staple";

    /// A terminal that returns scripted lines and records the prompts it was shown.
    struct ScriptedTerminal {
        interactive: bool,
        lines: VecDeque<&'static str>,
        prompts: Vec<String>,
    }

    impl ScriptedTerminal {
        fn new(lines: &[&'static str]) -> ScriptedTerminal {
            ScriptedTerminal { interactive: true, lines: lines.iter().copied().collect(), prompts: Vec::new() }
        }

        fn absent() -> ScriptedTerminal {
            ScriptedTerminal { interactive: false, lines: VecDeque::new(), prompts: Vec::new() }
        }
    }

    impl Terminal for ScriptedTerminal {
        fn is_interactive(&self) -> bool {
            self.interactive
        }

        fn read_hidden(&mut self, prompt: &str) -> io::Result<Passphrase> {
            self.prompts.push(prompt.to_owned());
            let line = self.lines.pop_front().ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            Ok(Passphrase::new(line.to_owned()))
        }
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> =
            pairs.iter().map(|(name, value)| (name.to_string(), OsString::from(value))).collect();
        move |name| map.get(name).cloned()
    }

    fn read(
        role: KeyRole,
        purpose: PassphrasePurpose,
        env: &dyn Fn(&str) -> Option<OsString>,
        terminal: &mut dyn Terminal,
    ) -> Result<(Passphrase, PassphraseSource), PassphraseError> {
        read_passphrase(role, purpose, "root key 1f2e3d4c", env, terminal)
    }

    #[test]
    fn variable_names_per_role() {
        assert_eq!(passphrase_var(KeyRole::Root), "SIGNET_ROOT_PASSPHRASE");
        assert_eq!(passphrase_var(KeyRole::Targets), "SIGNET_TARGETS_PASSPHRASE");
        assert_eq!(passphrase_var(KeyRole::Snapshot), "SIGNET_SNAPSHOT_PASSPHRASE");
        assert_eq!(passphrase_var(KeyRole::Delegation), "SIGNET_DELEGATION_PASSPHRASE");
        assert_eq!(passphrase_file_var(KeyRole::Delegation), "SIGNET_DELEGATION_PASSPHRASE_FILE");
    }

    #[test]
    fn env_variable_is_used_as_is() {
        let env = env_of(&[("SIGNET_TARGETS_PASSPHRASE", " spaced secret\n")]);
        let mut terminal = ScriptedTerminal::new(&[]);

        let (passphrase, source) = read(KeyRole::Targets, PassphrasePurpose::Create, &env, &mut terminal).unwrap();

        assert_eq!(passphrase.expose_secret(), " spaced secret\n");
        assert_eq!(source, PassphraseSource::Env { var: "SIGNET_TARGETS_PASSPHRASE".into() });
        assert!(terminal.prompts.is_empty(), "the terminal must not be used when the variable is set");
    }

    #[test]
    fn env_variable_of_other_role_is_ignored() {
        let env = env_of(&[("SIGNET_TARGETS_PASSPHRASE", SECRET)]);
        let mut terminal = ScriptedTerminal::absent();

        let error = read(KeyRole::Root, PassphrasePurpose::Unlock, &env, &mut terminal).unwrap_err();

        assert!(matches!(error, PassphraseError::NoTerminal { role: KeyRole::Root, .. }), "{error:?}");
    }

    #[test]
    fn file_trailing_newline_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("lf", "secret\n", "secret"),
            ("crlf", "secret\r\n", "secret"),
            ("none", "secret", "secret"),
            ("two", "secret\n\n", "secret\n"),
            ("spaces", "  secret  \n", "  secret  "),
        ];
        for (name, contents, expected) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            let env = env_of(&[("SIGNET_ROOT_PASSPHRASE_FILE", path.to_str().unwrap())]);

            let (passphrase, source) =
                read(KeyRole::Root, PassphrasePurpose::Unlock, &env, &mut ScriptedTerminal::absent()).unwrap();

            assert_eq!(passphrase.expose_secret(), expected, "case {name}");
            assert_eq!(source, PassphraseSource::File { var: "SIGNET_ROOT_PASSPHRASE_FILE".into(), path });
        }
    }

    #[test]
    fn missing_file_names_path_and_variable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent");
        let env = env_of(&[("SIGNET_DELEGATION_PASSPHRASE_FILE", path.to_str().unwrap())]);

        let error = read(KeyRole::Delegation, PassphrasePurpose::Unlock, &env, &mut ScriptedTerminal::absent())
            .unwrap_err();

        assert!(matches!(error, PassphraseError::ReadFile { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(path.to_str().unwrap()), "{message}");
        assert!(message.contains("SIGNET_DELEGATION_PASSPHRASE_FILE"), "{message}");
    }

    #[test]
    fn oversized_or_binary_file_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let large = dir.path().join("large");
        std::fs::write(&large, vec![b'a'; MAX_PASSPHRASE_FILE_LEN as usize + 1]).unwrap();
        let binary = dir.path().join("binary");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();

        for path in [large, binary] {
            let env = env_of(&[("SIGNET_ROOT_PASSPHRASE_FILE", path.to_str().unwrap())]);
            let error =
                read(KeyRole::Root, PassphrasePurpose::Unlock, &env, &mut ScriptedTerminal::absent()).unwrap_err();
            assert!(matches!(error, PassphraseError::InvalidFile { .. }), "{error:?}");
        }
    }

    #[test]
    fn both_variables_set_is_rejected() {
        let env = env_of(&[("SIGNET_ROOT_PASSPHRASE", SECRET), ("SIGNET_ROOT_PASSPHRASE_FILE", "/nonexistent")]);

        let error = read(KeyRole::Root, PassphrasePurpose::Unlock, &env, &mut ScriptedTerminal::absent()).unwrap_err();

        assert!(matches!(error, PassphraseError::BothSet { .. }), "{error:?}");
        assert!(!format!("{error} {error:?}").contains(SECRET));
    }

    #[test]
    fn empty_passphrase_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let empty_file = dir.path().join("empty");
        std::fs::write(&empty_file, "\n").unwrap();

        let from_env = env_of(&[("SIGNET_ROOT_PASSPHRASE", "")]);
        let error =
            read(KeyRole::Root, PassphrasePurpose::Unlock, &from_env, &mut ScriptedTerminal::absent()).unwrap_err();
        assert!(matches!(error, PassphraseError::Empty { origin: PassphraseSource::Env { .. } }), "{error:?}");

        let from_file = env_of(&[("SIGNET_ROOT_PASSPHRASE_FILE", empty_file.to_str().unwrap())]);
        let error =
            read(KeyRole::Root, PassphrasePurpose::Unlock, &from_file, &mut ScriptedTerminal::absent()).unwrap_err();
        assert!(matches!(error, PassphraseError::Empty { origin: PassphraseSource::File { .. } }), "{error:?}");

        let error = read(KeyRole::Root, PassphrasePurpose::Create, &env_of(&[]), &mut ScriptedTerminal::new(&["", ""]))
            .unwrap_err();
        assert!(matches!(error, PassphraseError::Empty { origin: PassphraseSource::Terminal }), "{error:?}");
    }

    #[test]
    fn no_variable_and_no_terminal_names_variables() {
        let error = read(KeyRole::Snapshot, PassphrasePurpose::Unlock, &env_of(&[]), &mut ScriptedTerminal::absent())
            .unwrap_err();

        assert!(matches!(error, PassphraseError::NoTerminal { role: KeyRole::Snapshot, .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("SIGNET_SNAPSHOT_PASSPHRASE "), "{message}");
        assert!(message.contains("SIGNET_SNAPSHOT_PASSPHRASE_FILE"), "{message}");
        assert!(message.contains("not a terminal"), "{message}");
    }

    #[test]
    fn unlock_prompts_once() {
        let mut terminal = ScriptedTerminal::new(&[SECRET]);

        let (passphrase, source) =
            read(KeyRole::Root, PassphrasePurpose::Unlock, &env_of(&[]), &mut terminal).unwrap();

        assert_eq!(passphrase.expose_secret(), SECRET);
        assert_eq!(source, PassphraseSource::Terminal);
        assert_eq!(terminal.prompts, ["Passphrase for root key 1f2e3d4c: "]);
    }

    #[test]
    fn create_prompts_twice() {
        let mut terminal = ScriptedTerminal::new(&[SECRET, SECRET]);

        let (passphrase, _) = read(KeyRole::Root, PassphrasePurpose::Create, &env_of(&[]), &mut terminal).unwrap();

        assert_eq!(passphrase.expose_secret(), SECRET);
        assert_eq!(terminal.prompts.len(), 2);
    }

    #[test]
    fn create_rejects_mismatched_entries() {
        let mut terminal = ScriptedTerminal::new(&[SECRET, "correct horse battery stapel"]);

        let error = read(KeyRole::Root, PassphrasePurpose::Create, &env_of(&[]), &mut terminal).unwrap_err();

        assert!(matches!(error, PassphraseError::Mismatch), "{error:?}");
        assert!(!format!("{error} {error:?}").contains("horse"));
    }

    #[test]
    fn closed_terminal_is_prompt_error() {
        let mut terminal = ScriptedTerminal::new(&[]);

        let error = read(KeyRole::Root, PassphrasePurpose::Unlock, &env_of(&[]), &mut terminal).unwrap_err();

        assert!(matches!(error, PassphraseError::Prompt(_)), "{error:?}");
    }

    #[test]
    fn debug_redacts_passphrase() {
        let passphrase = Passphrase::new(SECRET.to_owned());

        let debug = format!("{passphrase:?} {:#?}", Some(&passphrase));

        assert!(!debug.contains(SECRET), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn results_debug_without_passphrase() {
        let env = env_of(&[("SIGNET_ROOT_PASSPHRASE", SECRET)]);

        let result = read(KeyRole::Root, PassphrasePurpose::Unlock, &env, &mut ScriptedTerminal::absent());

        let debug = format!("{result:?}");
        assert!(!debug.contains(SECRET), "{debug}");
    }
}
