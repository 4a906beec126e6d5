//! How a command failed, and the exit code that says so.
//!
//! Every library error becomes a [`CliError`] through `From`, and that is the
//! one place an exit code is chosen (as cargo's `CliError` does). Commands
//! only add what the user should know about the consequence ("nothing was
//! written"). Printing happens once, in [`CliError::report`].

use std::process::ExitCode;

use crate::cli::exit;
use shorts::delivery::SmtpSetupError;
use shorts::delivery::compose::ComposeError;
use shorts::diagnostics::{Problem, Problems};
use shorts::digest::{DigestError, InputsError, SendDueError};
use shorts::inbound::MailboxError;
use shorts::lock::LockError;
use shorts::publish::PublishError;
use shorts::scaffold::ScaffoldError;
use shorts::site::BuildError;
use shorts::store::StoreError;
use shorts::subscribers::ImportError;
use shorts::tokens::SecretError;

/// A failed command: its exit code and what to tell the user.
#[derive(Debug)]
pub struct CliError {
    pub exit_code: u8,
    report: Report,
}

#[derive(Debug)]
enum Report {
    /// Problems in the user's input, one `path:line: message` each.
    Problems {
        problems: Problems,
        consequence: &'static str,
    },
    /// One line after `error: `.
    Message(String),
}

/// What a command that stopped on invalid input says was (not) done, unless it says otherwise.
const NOTHING_DONE: &str = "nothing was done";

impl CliError {
    /// Exit 1: the input has these problems.
    pub fn invalid(problems: Problems) -> Self {
        CliError {
            exit_code: exit::INVALID_INPUT,
            report: Report::Problems {
                problems,
                consequence: NOTHING_DONE,
            },
        }
    }

    /// Exit 1: one problem in the input that has no file of its own to point at.
    pub fn invalid_message(message: impl Into<String>) -> Self {
        Self::message(exit::INVALID_INPUT, message)
    }

    /// Exit 2: the command line is wrong.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::message(exit::USAGE, message)
    }

    /// Exit 3: the input is fine but the work failed.
    pub fn failure(error: impl Into<anyhow::Error>) -> Self {
        Self::message(exit::FAILURE, format!("{:#}", error.into()))
    }

    /// Exit 73: another run holds the lock.
    pub fn locked(message: impl Into<String>) -> Self {
        Self::message(exit::LOCKED, message)
    }

    /// The same error under another exit code (what a mail server needs to see).
    pub fn with_exit_code(self, exit_code: u8) -> Self {
        CliError { exit_code, ..self }
    }

    /// Exit 75: try again later; nothing is lost.
    pub fn temporary(message: impl Into<String>) -> Self {
        Self::message(exit::TEMPORARY, message)
    }

    fn message(exit_code: u8, message: impl Into<String>) -> Self {
        CliError {
            exit_code,
            report: Report::Message(message.into()),
        }
    }

    /// Says what the command did not do because of the problems, in place
    /// of "nothing was done".
    pub fn consequence(mut self, consequence: &'static str) -> Self {
        if let Report::Problems {
            consequence: said, ..
        } = &mut self.report
        {
            *said = consequence;
        }
        self
    }

    /// Prints the error once, to stderr, and gives its exit code.
    pub fn report(&self) -> ExitCode {
        match &self.report {
            Report::Problems {
                problems,
                consequence,
            } => {
                for problem in problems.iter() {
                    eprintln!("{problem}");
                }
                let n = problems.len();
                let plural = if n == 1 { "" } else { "s" };
                eprintln!("error: {n} problem{plural} found; {consequence}");
            }
            Report::Message(message) => eprintln!("error: {message}"),
        }
        ExitCode::from(self.exit_code)
    }
}

/// `result.on_invalid("nothing was sent")?`: the error, saying what its
/// command left undone when the input was at fault.
pub trait OnInvalid<T> {
    fn on_invalid(self, consequence: &'static str) -> Result<T, CliError>;
}

impl<T, E: Into<CliError>> OnInvalid<T> for Result<T, E> {
    fn on_invalid(self, consequence: &'static str) -> Result<T, CliError> {
        self.map_err(|e| e.into().consequence(consequence))
    }
}

impl From<Problems> for CliError {
    fn from(problems: Problems) -> Self {
        CliError::invalid(problems)
    }
}

impl From<Problem> for CliError {
    fn from(problem: Problem) -> Self {
        CliError::invalid(Problems(vec![problem]))
    }
}

impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        CliError::failure(error)
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        CliError::failure(error)
    }
}

impl From<StoreError> for CliError {
    /// A database server that cannot be reached (or went away) is a
    /// temporary failure: the next run resumes where this one stopped.
    /// A URL that takes no writes, or names a database or user the server
    /// refuses, is a setting to fix (1).
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            CliError::temporary(format!(
                "{error}; nothing was lost, and the next run resumes"
            ))
        } else if error.is_misconfigured() {
            CliError::invalid_message(error.to_string())
        } else {
            CliError::failure(error)
        }
    }
}

impl From<LockError> for CliError {
    fn from(error: LockError) -> Self {
        match error {
            LockError::Held { .. } => CliError::locked(error.to_string()),
            LockError::Io { .. } => CliError::failure(error),
        }
    }
}

impl From<BuildError> for CliError {
    fn from(error: BuildError) -> Self {
        match error {
            BuildError::Invalid(problems) => CliError::invalid(problems),
            BuildError::Archive(ref e) if e.is_unavailable() => CliError::temporary(format!(
                "{error}; nothing was lost, and the next run resumes"
            )),
            other => CliError::failure(other),
        }
    }
}

impl From<DigestError> for CliError {
    fn from(error: DigestError) -> Self {
        match error {
            // A missing [digest] table is a problem in config.toml, not a failed run.
            DigestError::NotConfigured => CliError::invalid_message(error.to_string()),
            DigestError::Store(e) => e.into(),
            other => CliError::failure(other),
        }
    }
}

impl From<InputsError> for CliError {
    fn from(error: InputsError) -> Self {
        match error {
            InputsError::Invalid(problems) => CliError::invalid(problems),
            InputsError::Digest(e) => e.into(),
        }
    }
}

impl From<SmtpSetupError> for CliError {
    fn from(error: SmtpSetupError) -> Self {
        match error {
            // Fixed in the config or the environment, not by running again.
            SmtpSetupError::MissingPassword(_) | SmtpSetupError::CaFile(_) => {
                CliError::invalid_message(error.to_string())
            }
            SmtpSetupError::Setup { .. } => CliError::failure(error),
        }
    }
}

impl From<SendDueError> for CliError {
    fn from(error: SendDueError) -> Self {
        match error {
            SendDueError::Digest(e) => e.into(),
            SendDueError::Store(e) => e.into(),
            SendDueError::Transport(e) => e.into(),
        }
    }
}

impl From<SecretError> for CliError {
    fn from(error: SecretError) -> Self {
        if error.is_setting() {
            CliError::invalid_message(error.to_string())
        } else {
            CliError::failure(error)
        }
    }
}

impl From<PublishError> for CliError {
    fn from(error: PublishError) -> Self {
        match error {
            PublishError::Secret(e) => e.into(),
            PublishError::Locked(e) => e.into(),
            PublishError::Build(e) => e.into(),
            PublishError::Inputs(e) => e.into(),
            PublishError::Send(e) => e.into(),
            PublishError::Store(e) => e.into(),
        }
    }
}

impl From<ImportError> for CliError {
    fn from(error: ImportError) -> Self {
        match error {
            ImportError::Invalid(problem) => problem.into(),
            ImportError::Store(e) => e.into(),
            other => CliError::failure(other),
        }
    }
}

impl From<ScaffoldError> for CliError {
    fn from(error: ScaffoldError) -> Self {
        match error {
            ScaffoldError::Io { .. } => CliError::failure(error),
            ScaffoldError::Exists(_) | ScaffoldError::Invalid(_) => {
                CliError::invalid_message(error.to_string())
            }
        }
    }
}

impl From<ComposeError> for CliError {
    fn from(error: ComposeError) -> Self {
        match error {
            // `shorts check` reports an unreadable key as a problem in the config too.
            ComposeError::DkimKey { .. } => CliError::invalid_message(error.to_string()),
            other => CliError::failure(other),
        }
    }
}

impl From<MailboxError> for CliError {
    fn from(error: MailboxError) -> Self {
        match error {
            MailboxError::Store(e) => e.into(),
            other => CliError::failure(other),
        }
    }
}
