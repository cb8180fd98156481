//! Address bans: IPv4 and IPv6 ranges (`10.0.0.0/8`, `2001:db8::/32`, or one address) held
//! in memory for the accept loop and the login check, stored in `address_bans`.

use std::net::IpAddr;
use std::sync::RwLock;

/// An address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The range's first address (host bits cleared).
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d[/n]` or `ipv6[/n]`; a lone address is its own range.
    ///
    /// # Errors
    /// A text that is not an address with an optional prefix length within its family.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("not an IP address: {addr:?}"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("prefix length must be 0..={max}: {p:?}"))?,
        };
        Ok(Cidr {
            net: mask(ip, prefix),
            prefix,
        })
    }

    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        ip.is_ipv4() == self.net.is_ipv4() && mask(ip, self.prefix) == self.net
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// `ip` with all but its first `prefix` bits cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & m).into())
        }
    }
}

/// The banned ranges. Read at every accept: a read lock over a short list.
#[derive(Debug, Default)]
pub struct Bans {
    list: RwLock<Vec<Cidr>>,
}

impl Bans {
    /// Replaces the list (at start, from the store).
    pub fn set(&self, list: Vec<Cidr>) {
        *self.list.write().unwrap_or_else(|e| e.into_inner()) = list;
    }

    /// Adds a range (once).
    pub fn add(&self, cidr: Cidr) {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        if !list.contains(&cidr) {
            list.push(cidr);
        }
    }

    /// Removes a range.
    pub fn remove(&self, cidr: Cidr) {
        self.list
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|c| *c != cidr);
    }

    /// Whether `ip` is in a banned range.
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        self.list
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|c| c.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_and_single_addresses() {
        let net = Cidr::parse("10.1.2.3/8").unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert!(net.contains(ip("10.255.0.1")));
        assert!(net.contains(ip("::ffff:10.9.9.9")));
        assert!(!net.contains(ip("11.0.0.1")));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert_eq!(one.to_string(), "127.0.0.1/32");
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        for bad in ["", "10.0.0.0/33", "::/129", "host", "10.0.0.0/x"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        let bans = Bans::default();
        bans.add(net);
        bans.add(net);
        assert!(bans.is_banned(ip("10.0.0.7")));
        bans.remove(net);
        assert!(!bans.is_banned(ip("10.0.0.7")));
    }
}
