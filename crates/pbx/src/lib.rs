//! SIP services of pbxguard over the sans-IO core: request dispatch, the registrar with digest
//! authentication, and the location service.
//!
//! Nothing here touches a socket, the clock or the database. The daemon hands [`Service::handle`] the
//! bytes of one message with its source, transport and `now`, sends back whatever reply comes out, and
//! drains [`Service::poll_event`] to persist bindings and log security events. Between messages it sleeps
//! until [`Service::poll_timeout`] and then calls [`Service::handle_timeout`]: retransmissions, trunk
//! registrations and housekeeping all run from that one deadline, not from a fixed tick. Extensions and
//! settings arrive as snapshots ([`Directory`], [`RegistrarConfig`]) whenever the operator changes them.

mod auth;
mod calls;
mod config;
mod date;
mod dialplan;
mod directory;
mod event;
mod fifo;
mod nonce_counts;
mod proxy;
mod registrar;
mod service;
mod transfer;
mod transport;
mod txcache;
mod uplink;

pub use config::RegistrarConfig;
pub use date::civil_from_days;
pub use dialplan::{DialPlan, Route, Trunk, TrunkAuth};
pub use directory::{Directory, ExtensionAuth};
pub use event::{Binding, Event};
pub use registrar::Registrar;
pub use service::Service;
pub use transport::{Locals, Target, Transmit, Transport};
