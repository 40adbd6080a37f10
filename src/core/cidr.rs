//! An IP address with a prefix length, for both interface addresses
//! ("192.168.10.1/24": host bits kept) and networks ("10.0.0.0/8").

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

impl Cidr {
    pub fn new(addr: IpAddr, len: u8) -> Option<Cidr> {
        (len <= max_len(&addr)).then_some(Cidr { addr, len })
    }

    pub fn v4(a: [u8; 4], len: u8) -> Cidr {
        Cidr::new(IpAddr::from(a), len).expect("valid IPv4 prefix length")
    }

    /// The default route of the address family ("0.0.0.0/0" or "::/0").
    pub fn default_for(v6: bool) -> Cidr {
        let addr = if v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        Cidr { addr, len: 0 }
    }

    pub fn is_v6(&self) -> bool {
        self.addr.is_ipv6()
    }

    pub fn is_default(&self) -> bool {
        self.len == 0
    }

    /// The network this prefix belongs to (host bits cleared).
    pub fn network(&self) -> Cidr {
        let addr = match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(self.len))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(self.len))),
        };
        Cidr {
            addr,
            len: self.len,
        }
    }

    /// True when the address carries host bits, i.e. it names a host on the network.
    pub fn is_network(&self) -> bool {
        self.network().addr == self.addr
    }

    /// The IPv4 broadcast address of the network, when it has one (prefix < 31).
    pub fn broadcast_v4(&self) -> Option<Ipv4Addr> {
        match self.addr {
            IpAddr::V4(a) if self.len < 31 => {
                Some(Ipv4Addr::from(u32::from(a) | !mask32(self.len)))
            }
            _ => None,
        }
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                u32::from(n) & mask32(self.len) == u32::from(*a) & mask32(self.len)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                u128::from(n) & mask128(self.len) == u128::from(*a) & mask128(self.len)
            }
            _ => false,
        }
    }

    /// True when `other` lies entirely inside this network.
    pub fn covers(&self, other: &Cidr) -> bool {
        other.len >= self.len && self.contains(&other.addr)
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.covers(other) || other.covers(self)
    }
}

fn max_len(addr: &IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn mask32(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// Parses "ADDR/LEN". The prefix length is required: a bare address is
    /// ambiguous in a router config (host or network?), so it is refused.
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not ADDRESS/PREFIX (the /prefix is required)"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IP address"))?;
        let len: u8 = len
            .parse()
            .map_err(|_| format!("`/{len}` is not a prefix length"))?;
        Cidr::new(addr, len).ok_or_else(|| format!("prefix length /{len} is too long for {addr}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(c("192.168.10.1/24").to_string(), "192.168.10.1/24");
        assert_eq!(c("fd00::1/64").to_string(), "fd00::1/64");
        assert!("192.168.10.1".parse::<Cidr>().is_err());
        assert!("192.168.10.1/33".parse::<Cidr>().is_err());
        assert!("300.1.1.1/24".parse::<Cidr>().is_err());
        assert!("10.0.0.0/x".parse::<Cidr>().is_err());
    }

    #[test]
    fn network_and_broadcast() {
        assert_eq!(c("192.168.10.77/24").network(), c("192.168.10.0/24"));
        assert_eq!(
            c("192.168.10.77/24").broadcast_v4(),
            Some(Ipv4Addr::new(192, 168, 10, 255))
        );
        assert_eq!(c("10.0.0.1/32").broadcast_v4(), None);
        assert!(c("10.0.0.0/8").is_network());
        assert!(!c("10.0.0.1/8").is_network());
        assert_eq!(c("fd00::1/64").network(), c("fd00::/64"));
    }

    #[test]
    fn overlap_rules() {
        assert!(c("10.0.0.0/8").overlaps(&c("10.1.0.0/16")));
        assert!(c("10.1.0.0/16").overlaps(&c("10.0.0.0/8")));
        assert!(!c("10.1.0.0/16").overlaps(&c("10.2.0.0/16")));
        assert!(c("0.0.0.0/0").overlaps(&c("10.2.0.0/16")));
        assert!(!c("0.0.0.0/0").overlaps(&c("::/0")));
        assert!(c("192.168.10.1/24").covers(&c("192.168.10.200/32")));
        assert!(!c("192.168.10.1/24").covers(&c("192.168.0.0/16")));
    }
}
