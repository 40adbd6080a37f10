//! Why a kernel step failed, in kinds the callers act on: a deletion that
//! finds nothing is done; kernel WireGuard that is not there means
//! wireguard-go (backend auto); everything else is reported as it is.

use nix::errno::Errno;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelError {
    /// The kernel refused a request: what was asked, and its errno.
    Refused { what: String, errno: Errno },
    /// The named interface is not there.
    NoInterface(String),
    /// Anything else: a helper program, a file under /proc or the state
    /// directory, an encoding limit. Already a sentence.
    Other(String),
}

impl KernelError {
    pub fn refused(what: impl Into<String>, errno: Errno) -> KernelError {
        KernelError::Refused {
            what: what.into(),
            errno,
        }
    }

    /// What rtnetlink returned: the kernel's errno when it sent one.
    pub fn from_rtnetlink(what: &str, e: rtnetlink::Error) -> KernelError {
        match &e {
            rtnetlink::Error::NetlinkError(m) if m.raw_code() != 0 => {
                KernelError::refused(what, Errno::from_raw(m.raw_code().abs()))
            }
            _ => KernelError::Other(format!("{what}: {e}")),
        }
    }

    /// A deletion that failed because its object is not there (any more):
    /// the state it wanted already holds.
    pub fn already_gone(&self) -> bool {
        match self {
            KernelError::Refused { errno, .. } => errno_gone(*errno),
            KernelError::NoInterface(_) => true,
            KernelError::Other(_) => false,
        }
    }

    /// The running kernel lacks the feature (a link kind, a module).
    pub fn unsupported(&self) -> bool {
        matches!(
            self,
            KernelError::Refused {
                errno: Errno::EOPNOTSUPP | Errno::EAFNOSUPPORT | Errno::EPROTONOSUPPORT,
                ..
            }
        )
    }
}

/// The errnos by which the kernel says "no such object": a route (ESRCH),
/// a rule or an address (ENOENT, EADDRNOTAVAIL), a link (ENODEV).
pub fn errno_gone(errno: Errno) -> bool {
    matches!(
        errno,
        Errno::ENOENT | Errno::ESRCH | Errno::EADDRNOTAVAIL | Errno::ENODEV
    )
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::Refused { what, errno } => {
                write!(f, "{what}: the kernel refused: {}", errno.desc())
            }
            KernelError::NoInterface(name) => write!(f, "interface {name} does not exist"),
            KernelError::Other(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for KernelError {}

/// The effects still written with String errors (wireguard-control,
/// sysctl files, the state directory) fold into `Other`.
impl From<String> for KernelError {
    fn from(s: String) -> KernelError {
        KernelError::Other(s)
    }
}

/// For callers outside the apply path (doctor, trace) that report text.
impl From<KernelError> for String {
    fn from(e: KernelError) -> String {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_core::ErrorMessage;
    use std::num::NonZeroI32;

    fn netlink_error(errno: i32) -> rtnetlink::Error {
        let mut m = ErrorMessage::default();
        m.code = NonZeroI32::new(-errno);
        rtnetlink::Error::NetlinkError(m)
    }

    #[test]
    fn the_kernels_errno_is_kept_and_classified() {
        let gone = KernelError::from_rtnetlink("rule", netlink_error(libc::ENOENT));
        assert_eq!(gone, KernelError::refused("rule", Errno::ENOENT));
        assert!(gone.already_gone() && !gone.unsupported());
        assert_eq!(
            gone.to_string(),
            "rule: the kernel refused: No such file or directory"
        );

        let no_module =
            KernelError::from_rtnetlink("creating wg0", netlink_error(libc::EOPNOTSUPP));
        assert!(no_module.unsupported() && !no_module.already_gone());

        let exists = KernelError::from_rtnetlink("address", netlink_error(libc::EEXIST));
        assert!(!exists.unsupported() && !exists.already_gone());
        let denied = KernelError::from_rtnetlink("link", netlink_error(libc::EPERM));
        assert!(!denied.unsupported() && !denied.already_gone());
    }

    #[test]
    fn other_failures_are_neither_gone_nor_unsupported() {
        let e = KernelError::from_rtnetlink("link", rtnetlink::Error::RequestFailed);
        assert!(matches!(e, KernelError::Other(_)));
        assert!(!e.already_gone() && !e.unsupported());
        assert!(KernelError::NoInterface("wg0".into()).already_gone());
        let s: String = KernelError::NoInterface("wg0".into()).into();
        assert_eq!(s, "interface wg0 does not exist");
    }
}
