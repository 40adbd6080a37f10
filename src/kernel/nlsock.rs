//! A raw netlink socket for the writers that batch many messages per send
//! (nftables transactions, route batches): bound, with a receive timeout and
//! room for a large batch's acknowledgements.

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

pub const SOL_NETLINK: libc::c_int = 270;
/// Acknowledgements without a copy of the request.
pub const NETLINK_CAP_ACK: libc::c_int = 10;
/// The kernel's error strings in acknowledgements.
pub const NETLINK_EXT_ACK: libc::c_int = 11;
/// Dump requests' filters honoured by the kernel.
pub const NETLINK_GET_STRICT_CHK: libc::c_int = 12;
const RECV_TIMEOUT: Duration = Duration::from_secs(10);
/// Sends larger than this raise the send buffer first.
const LARGE_SEND: usize = 200_000;

pub struct NlSocket {
    fd: OwnedFd,
    /// Names the socket in errors ("route netlink", "nftables netlink").
    what: &'static str,
    /// The receive buffer got the size asked for (root can force it).
    pub rcvbuf_forced: bool,
}

impl NlSocket {
    pub fn open(
        what: &'static str,
        protocol: SockProtocol,
        rcvbuf: usize,
    ) -> Result<NlSocket, String> {
        let sys = |w: &str, e: Errno| format!("{what}: {w}: {}", e.desc());
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            protocol,
        )
        .map_err(|e| sys("cannot open a socket", e))?;
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(|e| sys("cannot bind", e))?;
        let rcvbuf_forced = socket::setsockopt(&fd, socket::sockopt::RcvBufForce, &rcvbuf).is_ok();
        if !rcvbuf_forced {
            let _ = socket::setsockopt(&fd, socket::sockopt::RcvBuf, &rcvbuf);
        }
        let tv = nix::sys::time::TimeVal::new(RECV_TIMEOUT.as_secs() as _, 0);
        socket::setsockopt(&fd, socket::sockopt::ReceiveTimeout, &tv)
            .map_err(|e| sys("cannot set a receive timeout", e))?;
        Ok(NlSocket {
            fd,
            what,
            rcvbuf_forced,
        })
    }

    /// Turns on a SOL_NETLINK option. A failure is ignored: each option
    /// only trims or details what the kernel answers.
    pub fn enable(&self, option: libc::c_int) {
        let one: libc::c_int = 1;
        // SAFETY: a valid socket and a c_int option value of the right size.
        unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                SOL_NETLINK,
                option,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }

    pub fn error(&self, what: &str, e: Errno) -> String {
        format!("{}: {what}: {}", self.what, e.desc())
    }

    /// Sends `bytes` whole, or fails.
    pub fn send(&self, bytes: &[u8]) -> Result<(), String> {
        if bytes.len() > LARGE_SEND {
            let _ = socket::setsockopt(&self.fd, socket::sockopt::SndBufForce, &(bytes.len() * 2));
        }
        let n = socket::sendto(
            self.fd.as_raw_fd(),
            bytes,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )
        .map_err(|e| self.error("cannot send", e))?;
        if n != bytes.len() {
            return Err(format!("{}: sent {n} of {} bytes", self.what, bytes.len()));
        }
        Ok(())
    }

    /// One datagram; an error when the kernel stays silent for the timeout.
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize, String> {
        loop {
            match socket::recv(self.fd.as_raw_fd(), buf, MsgFlags::empty()) {
                Ok(n) => return Ok(n),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    return Err(format!("{}: no answer from the kernel", self.what))
                }
                Err(e) => return Err(self.error("cannot receive", e)),
            }
        }
    }
}
