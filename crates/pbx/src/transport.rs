//! Where messages go and come from: the transport, a destination, a message to send, and the addresses
//! this proxy listens on. Shared by the dial plan, the proxy, the uplinks and the service, so it
//! depends on no other module of the crate.

use std::net::{IpAddr, SocketAddr};

/// Transport a message arrived on; replies go back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }
}

/// Where a message goes: an address and the transport to use. For TCP and TLS the daemon sends on the
/// connection to that address, opening one for TCP when there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// A message the service wants sent somewhere other than back to the request's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub target: Target,
    pub data: Vec<u8>,
}

/// The addresses this proxy puts in Via and Record-Route, per transport; `None` for a transport it
/// does not listen on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Locals {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
}

impl Locals {
    pub fn get(&self, t: Transport) -> Option<SocketAddr> {
        match t {
            Transport::Udp => self.udp,
            Transport::Tcp => self.tcp,
            Transport::Tls => self.tls,
        }
    }

    /// Whether `host:port` names this proxy (a Route entry or Via sent-by).
    pub fn is_us(&self, host: &str, port: Option<u16>) -> bool {
        let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else {
            return false;
        };
        [self.udp, self.tcp, self.tls]
            .into_iter()
            .flatten()
            .any(|a| a.ip() == ip && port.map_or(a.port() == 5060 || a.port() == 5061, |p| p == a.port()))
    }

    fn uri(&self, t: Transport) -> Option<String> {
        let a = self.get(t)?;
        Some(match t {
            Transport::Udp => format!("<sip:{a};lr>"),
            Transport::Tcp => format!("<sip:{a};transport=tcp;lr>"),
            Transport::Tls => format!("<sip:{a};transport=tls;lr>"),
        })
    }

    /// Record-Route for a call entering on `inbound` and leaving on `outbound`: one entry, or two
    /// when the transports differ (RFC 5658), the one facing the callee on top.
    pub(crate) fn record_route(&self, inbound: Transport, outbound: Transport) -> Vec<String> {
        let mut v: Vec<String> = self.uri(outbound).into_iter().collect();
        if inbound != outbound {
            v.extend(self.uri(inbound));
        }
        v
    }

    pub(crate) fn via(&self, t: Transport, branch: &str) -> Option<String> {
        let a = self.get(t)?;
        Some(format!("SIP/2.0/{} {a};branch={branch};rport", t.as_str().to_ascii_uppercase()))
    }
}
