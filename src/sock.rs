//! Sockets tied to one interface (SO_BINDTODEVICE): the DHCP servers, the
//! status page and the exit probe each talk through exactly one device,
//! whatever the routing tables and the other interfaces' addresses say.

use nix::sys::socket::{self, setsockopt, sockopt, AddressFamily, SockFlag, SockType};
use std::ffi::OsString;
use std::os::fd::OwnedFd;

/// An IPv4 socket of `kind` (closed on exec) that sends and receives only
/// through `interface`. Errors name the interface and the failing step.
pub fn on_device(kind: SockType, interface: &str) -> Result<OwnedFd, String> {
    let fd = socket::socket(AddressFamily::Inet, kind, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|e| format!("{interface}: socket: {e}"))?;
    setsockopt(&fd, sockopt::BindToDevice, &OsString::from(interface))
        .map_err(|e| format!("{interface}: SO_BINDTODEVICE: {e}"))?;
    Ok(fd)
}

/// The interface's index now, None if it does not exist. A socket bound
/// to a device stays bound to that index: an interface deleted and made
/// again (hostapd's extra SSIDs when hostapd restarts, a USB NIC plugged
/// back) needs new sockets, so the workers' specs carry the index.
pub fn ifindex(interface: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(interface).ok()
}

/// For a LAN server's spec: `Some(ifindex(interface))`, or None while
/// hostapd has not made `interface` yet (one of its extra SSIDs): the
/// server is then started by the pass that follows the interface's
/// creation, not failed now.
pub fn lan_ifindex(m: &crate::core::model::Model, interface: &str) -> Option<Option<u32>> {
    let index = ifindex(interface);
    if index.is_none() && m.made_by_hostapd(interface) {
        return None;
    }
    Some(index)
}

/// `interface` has `addr` now (a listener bound to it can start).
pub fn has_address(interface: &str, addr: std::net::Ipv4Addr) -> bool {
    nix::ifaddrs::getifaddrs()
        .map(|mut all| {
            all.any(|i| {
                i.interface_name == interface
                    && i.address
                        .as_ref()
                        .and_then(|a| a.as_sockaddr_in())
                        .is_some_and(|sin| sin.ip() == addr)
            })
        })
        .unwrap_or(false)
}
