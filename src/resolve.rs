//! The system resolver for trunk host names, behind the application layer's `Resolver`.

use pbxguard_app::views::Resolver;
use std::net::{SocketAddr, ToSocketAddrs};

pub(crate) struct System;

impl Resolver for System {
    fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, String> {
        (host, port).to_socket_addrs().map_err(|e| e.to_string())?.next().ok_or_else(|| "no address".to_owned())
    }
}
