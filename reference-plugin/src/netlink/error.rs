//! The error type of the netlink client: every variant names the operation that failed.

use std::io;

/// A failed netlink, namespace or sysctl operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel refused a request.
    #[error("{op}: {source}{}", ext_note(.ext))]
    Kernel {
        /// What was asked, e.g. `create veth eth0 <-> veth1a2b3c4d`.
        op: String,
        /// The errno the kernel answered with.
        source: io::Error,
        /// The kernel's extended-ack message, when it gave one.
        ext: Option<String>,
    },
    /// A system call around the request (socket, send, receive, open, setns ...) failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The caller asked for something that cannot be expressed, or the kernel's answer could not
    /// be read.
    #[error("{op}: {msg}")]
    Invalid {
        /// What was being done.
        op: String,
        /// What was wrong.
        msg: String,
    },
}

fn ext_note(ext: &Option<String>) -> String {
    match ext {
        Some(m) if !m.is_empty() => format!(" ({m})"),
        _ => String::new(),
    }
}

impl Error {
    /// The errno behind this error, if it came from the kernel or a system call.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { source, .. } | Error::Io { source, .. } => source.raw_os_error(),
            Error::Invalid { .. } => None,
        }
    }

    /// True when the kernel said the object already exists (`EEXIST`).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// True when the kernel said the object does not exist (`ENOENT`, `ENODEV`, `ESRCH`,
    /// `EADDRNOTAVAIL`).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc::ENOENT | libc::ENODEV | libc::ESRCH | libc::EADDRNOTAVAIL)
        )
    }

    pub(crate) fn io(op: impl Into<String>, source: io::Error) -> Self {
        Error::Io { op: op.into(), source }
    }

    pub(crate) fn invalid(op: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Invalid {
            op: op.into(),
            msg: msg.into(),
        }
    }
}

/// Result alias of the netlink client.
pub type Result<T, E = Error> = std::result::Result<T, E>;
