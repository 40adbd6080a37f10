//! The agent keeps only the capabilities it needs and drops the rest, from
//! its own sets and from the bounding set (so the wireguard-go it starts
//! cannot regain them):
//!
//! - CAP_NET_ADMIN: netlink writes (links, addresses, routes, rules),
//!   nftables (nf_tables netlink), WireGuard (and wireguard-go's TUN), network sysctls;
//! - CAP_NET_RAW: the DHCP client and server (raw/packet sockets);
//! - CAP_NET_BIND_SERVICE: the status page and DHCP on ports below 1024.
//!
//! Files (keys, state, /proc/sys/net, wireguard-go sockets) are root's own,
//! so no CAP_DAC_* is needed; wireguard-go children are signalled as the
//! same user, so no CAP_KILL either.

use caps::{CapSet, Capability, CapsHashSet};

pub const KEPT: [Capability; 3] = [
    Capability::CAP_NET_ADMIN,
    Capability::CAP_NET_RAW,
    Capability::CAP_NET_BIND_SERVICE,
];

/// Drops every capability but KEPT. Does nothing for a non-root user (who
/// has none to drop); errors name what could not be dropped.
pub fn drop_unneeded() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let kept: CapsHashSet = KEPT.into_iter().collect();
    for cap in caps::all() {
        // A capability the running kernel does not know cannot be dropped
        // from the bounding set, and cannot be held either.
        if !kept.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| format!("cannot drop {cap}: {e}"))?;
        }
    }
    let none = CapsHashSet::new();
    for (set, want) in [
        (CapSet::Inheritable, &none),
        (CapSet::Effective, &kept),
        (CapSet::Permitted, &kept),
    ] {
        caps::set(None, set, want).map_err(|e| format!("cannot set capabilities: {e}"))?;
    }
    Ok(())
}
