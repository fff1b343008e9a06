//! The call-routing proxy (RFC 3261 §16-17): INVITE server transactions towards the caller, one INVITE
//! client transaction per fork branch, CANCEL, the timers that UDP needs, and the dialog table that
//! lets in-dialog requests (ACK, BYE, re-INVITE, UPDATE, INFO, REFER...) through, and nothing else.
//!
//! In-dialog requests are relayed transaction-statelessly to the other party of a dialog this proxy set
//! up; their responses find their way back through a bounded table keyed by our Via branch. A request
//! that names no known dialog is refused: a forged To tag must not turn the proxy into an open relay to
//! the trunks.
//!
//! [`state`] holds the tables and everything the parts share, and imports none of them; each part
//! (client and server transactions, dialogs, relays, trunk challenges, the timers) adds the methods of
//! its seam to [`Proxy`], and the toll-fraud counters stand apart in [`fraud`]. [`hangup`] cuts a
//! trunk call at its longest length with a BYE of ours to each party.

mod client;
mod dialog;
mod fraud;
mod hangup;
mod relay;
mod server;
mod state;
mod timers;
mod trunk_auth;

pub(crate) use dialog::outcome_events;
pub(crate) use state::{BuildRequest, CallInfo, DialogEnd, MAX_INVITE, MAX_PENDING_PER_CALLER, Party, Proxy};
