//! hostapd's control interface through the bindgen bindings to
//! `wpa_ctrl.h` (build.rs): a safe connection with requests that time out
//! (a hung hostapd must not hang its supervisor) and event reception.
//!
//! One connection either answers requests or, once attached, receives
//! events: hostapd_cli keeps two for the same reason, since an event can
//! arrive between a request and its reply.

use std::ffi::CString;
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code
)]
mod sys {
    include!(concat!(env!("OUT_DIR"), "/wpa_ctrl.rs"));
}

/// hostapd's replies fit in 4 kB except long station lists, which are
/// asked for one station at a time.
const REPLY_MAX: usize = 16 * 1024;

pub struct Ctrl {
    raw: NonNull<sys::wpa_ctrl>,
}

// SAFETY: a wpa_ctrl is a socket plus two paths, used by one thread at a
// time (&mut self); moving it between threads is fine.
unsafe impl Send for Ctrl {}

impl Ctrl {
    /// Connects to the socket hostapd made for one interface (`ctrl_dir/IFACE`).
    pub fn open(socket: &Path) -> Result<Ctrl, String> {
        let path = CString::new(socket.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("{}: NUL in path", socket.display()))?;
        // SAFETY: path is a valid C string for the duration of the call.
        let raw = unsafe { sys::wpa_ctrl_open(path.as_ptr()) };
        NonNull::new(raw).map(|raw| Ctrl { raw }).ok_or_else(|| {
            format!(
                "cannot connect to {}: {}",
                socket.display(),
                std::io::Error::last_os_error()
            )
        })
    }

    fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: raw is open until Drop; the fd lives as long as it.
        unsafe { BorrowedFd::borrow_raw(sys::wpa_ctrl_get_fd(self.raw.as_ptr())) }
    }

    /// Sends `cmd` and waits up to `timeout` for its reply. Event messages
    /// (`<N>...`) that arrive meanwhile are skipped.
    pub fn request(&mut self, cmd: &str, timeout: Duration) -> Result<String, String> {
        // wpa_ctrl_request has a fixed 10 s timeout: send ourselves, then
        // wait on the socket for as long as the caller allows.
        nix::sys::socket::send(
            std::os::fd::AsRawFd::as_raw_fd(&self.fd()),
            cmd.as_bytes(),
            nix::sys::socket::MsgFlags::empty(),
        )
        .map_err(|e| format!("{cmd}: send: {e}"))?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self
                .recv(left)?
                .ok_or_else(|| format!("{cmd}: no reply within {} ms", timeout.as_millis()))?;
            if !msg.starts_with('<') {
                return Ok(msg);
            }
        }
    }

    /// Registers this connection for events (`ATTACH`).
    pub fn attach(&mut self, timeout: Duration) -> Result<(), String> {
        match self.request("ATTACH", timeout)?.as_str() {
            "OK\n" => Ok(()),
            other => Err(format!("ATTACH: {}", other.trim())),
        }
    }

    /// The next message, waiting up to `timeout`; None if none came.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<String>, String> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let ready = {
            let mut fds = [PollFd::new(self.fd(), PollFlags::POLLIN)];
            poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            )
            .map_err(|e| format!("poll: {e}"))?
        };
        if ready == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; REPLY_MAX];
        let mut len = buf.len();
        // SAFETY: buf has len writable bytes; wpa_ctrl_recv writes at most
        // len and stores the count in len.
        let r = unsafe { sys::wpa_ctrl_recv(self.raw.as_ptr(), buf.as_mut_ptr().cast(), &mut len) };
        if r != 0 {
            return Err(format!("receive: {}", std::io::Error::last_os_error()));
        }
        buf.truncate(len);
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }
}

impl Drop for Ctrl {
    fn drop(&mut self) {
        // SAFETY: raw came from wpa_ctrl_open and is closed once.
        unsafe { sys::wpa_ctrl_close(self.raw.as_ptr()) }
    }
}
