//! Who the client is behind a reverse proxy: the TCP peer, unless the peer
//! is one of `[server] trusted_proxies`, in which case the hops it reports
//! (`Forwarded`, RFC 7239, else `X-Forwarded-For`) are read from the right,
//! skipping trusted proxies, and the first untrusted hop is the client.
//!
//! From any other peer those headers are ignored: anyone can send them, and
//! believing them would let one client pose as many (or as the site's own
//! proxy) to get past the sign-up limit. Only the address (and what the
//! limit counts it as) is decided here; what is limited per client is the
//! server's business.

use std::net::{IpAddr, Ipv6Addr};

use axum::http::HeaderMap;

use crate::config::Cidr;

/// The client's address for a request from `peer`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops = forwarded_hops(headers);
    // Right to left: the right-most hop was added by our own proxy, and
    // everything left of the first untrusted hop is that client's to forge.
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip) => client = ip,
            Some(ip) => return ip,
            // An obfuscated or unparseable hop: nothing to its left can be trusted.
            None => return client,
        }
    }
    client
}

/// What the sign-up limit counts a client as: its IPv4 address, or the /64
/// network of its IPv6 address. One home or server is given a whole /64,
/// and could take a new address from it for every sign-up.
pub fn limit_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

/// The hops a proxy reports, left (first client) to right (last proxy):
/// `Forwarded`'s `for=` values when it is present, else `X-Forwarded-For`.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|hop| hop.trim().to_string())
            .filter(|hop| !hop.is_empty())
            .collect()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .map(|element| forwarded_for(element))
            .collect();
    }
    values("x-forwarded-for")
        .iter()
        .map(|hop| parse_node(hop))
        .collect()
}

/// The `for=` of one `Forwarded` element (`for=192.0.2.60;proto=https`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case("for"))
        .and_then(|(_, value)| parse_node(value.trim().trim_matches('"')))
}

/// `192.0.2.60`, `192.0.2.60:4711`, `[2001:db8::1]:4711`, `2001:db8::1`;
/// `unknown` and obfuscated names (`_hidden`) are no address.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ranges(list: &[&str]) -> Vec<Cidr> {
        list.iter()
            .map(|r| Cidr::try_from(r.to_string()).unwrap())
            .collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let forged = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        assert_eq!(
            client_ip(ip("198.51.100.7"), &forged, &ranges(&["127.0.0.1"])),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("198.51.100.7"), &forged, &[]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let trusted = ranges(&["127.0.0.1", "10.0.0.0/8"]);
        // The client forged the left-most entry; our proxies appended the rest.
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.2.3")]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &chain, &trusted),
            ip("198.51.100.7")
        );
        let split = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &split, &trusted),
            ip("198.51.100.7")
        );
        let forwarded = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.1",
        )]);
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &forwarded, &trusted),
            ip("2001:db8::7")
        );
        // An obfuscated hop ends the walk: what is left of it is the client's to say.
        let hidden = headers(&[("forwarded", "for=6.6.6.6, for=_hidden, for=10.0.0.1")]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &hidden, &trusted),
            ip("10.0.0.1")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_ip(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn the_limit_counts_an_ipv6_client_by_its_network() {
        assert_eq!(limit_key(ip("198.51.100.7")), "198.51.100.7");
        assert_eq!(limit_key(ip("::ffff:198.51.100.7")), "198.51.100.7");
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            limit_key(ip("2001:db8:1:2:ffff:ffff:ffff:fffe")),
            limit_key(ip("2001:db8:1:2::1"))
        );
        assert_ne!(
            limit_key(ip("2001:db8:1:3::1")),
            limit_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(limit_key(ip("::1")), "::/64");
    }

    #[test]
    fn ranges_parse_and_match_by_prefix() {
        let net = Cidr::try_from("192.168.0.0/23".to_string()).unwrap();
        assert!(net.contains(ip("192.168.1.255")));
        assert!(!net.contains(ip("192.168.2.0")));
        assert!(
            Cidr::try_from("::1".to_string())
                .unwrap()
                .contains(ip("::1"))
        );
        for bad in ["10.0.0.0/33", "localhost", "10.0.0/8", "::/129", ""] {
            assert!(Cidr::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }
}
