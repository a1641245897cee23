//! How a command fails: the one line that says what failed, and the exit
//! code. Commands return it; [`finish`] logs it once and picks the code.

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    code: u8,
    /// `None` when the command's own output already gave the verdict.
    message: Option<String>,
}

impl CommandError {
    /// The input is wrong (options, configuration, the files named), and
    /// nothing was done: exit 2.
    pub fn usage(message: impl Into<String>) -> CommandError {
        CommandError {
            code: EXIT_USAGE,
            message: Some(message.into()),
        }
    }

    /// The work failed (TPM, kernel, a write): exit 1.
    pub fn failed(message: impl Into<String>) -> CommandError {
        CommandError {
            code: EXIT_FAILED,
            message: Some(message.into()),
        }
    }

    /// Failed, and what the command printed already says so and why
    /// (`check FAILED`): exit 1, nothing more is logged.
    pub fn reported() -> CommandError {
        CommandError {
            code: EXIT_FAILED,
            message: None,
        }
    }

    /// A usage or configuration error that was already printed where it
    /// was found (a parser's own usage line): exit 2, nothing more logged.
    pub fn usage_reported() -> CommandError {
        CommandError {
            code: EXIT_USAGE,
            message: None,
        }
    }

    /// The caller's context in front: `what: message`.
    pub fn context(self, what: impl fmt::Display) -> CommandError {
        CommandError {
            message: self.message.map(|m| format!("{what}: {m}")),
            ..self
        }
    }

    /// The message with `; nothing was written` after it: the failure came
    /// before the first file was replaced.
    pub fn nothing_written(self) -> CommandError {
        CommandError {
            message: self.message.map(|m| format!("{m}; nothing was written")),
            ..self
        }
    }

    pub fn code(&self) -> u8 {
        self.code
    }

    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => f.write_str(m),
            None => write!(f, "failed (exit {})", self.code),
        }
    }
}

impl std::error::Error for CommandError {}

/// The one place a command's failure is logged, once, and turned into the
/// exit code.
pub fn finish(result: Result<(), CommandError>) -> u8 {
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            if let Some(m) = e.message() {
                log::error!("{m}");
            }
            e.code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_context() {
        assert_eq!(finish(Ok(())), EXIT_OK);
        let e = CommandError::usage("bad").context("sealing the kmk");
        assert_eq!(e.message(), Some("sealing the kmk: bad"));
        assert_eq!(finish(Err(e)), EXIT_USAGE);
        let e = CommandError::failed("no TPM").nothing_written();
        assert_eq!(e.to_string(), "no TPM; nothing was written");
        assert_eq!(finish(Err(e)), EXIT_FAILED);
        let e = CommandError::reported().context("ignored");
        assert_eq!(e.message(), None);
        assert_eq!(finish(Err(e)), EXIT_FAILED);
    }
}
