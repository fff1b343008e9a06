//! Sans-IO SIP for pbxguard: a zero-copy, bounded parser (RFC 3261 §7, §20, §25), a response printer,
//! request sanity checks that map to status codes, and server-side digest authentication
//! (RFC 3261 §22, RFC 7616, RFC 8760).
//!
//! What this crate is not: it opens no sockets, reads no clock and keeps no state between calls. Every
//! function that depends on time takes `now` (seconds since the Unix epoch) as an argument, so the daemon,
//! the tests and the fuzzers drive it the same way.
//!
//! Parsing is lazy: [`Message::parse`] frames the message and splits header lines (names are classified,
//! values stay raw slices of the input), and typed views such as [`Via`] or [`NameAddr`] are parsed only
//! when asked for. The flood gate can look at a message for the price of one pass over its header lines.

mod auth;
mod error;
mod forward;
mod headers;
mod message;
mod parse;
mod response;
mod sanity;
mod scan;
mod uri;

pub use auth::{Algorithm, Challenge, Credentials, NonceKey, NonceStatus, ha1};
pub use error::{Error, ParseError, Result};
pub use forward::{Forward, forward_request, hop_request, reissue, start_line, strip_top_via};
pub use headers::{CSeq, NameAddr, Param, Params, Via};
pub use message::{Header, HeaderName, Message, Method, StartLine};
pub use parse::{Limits, stream_frame_len};
pub use response::{ResponseBuilder, push_decimal};
pub use sanity::{MAX_VIAS, Request, SanityError, check_request, too_many_vias};
pub use scan::split_commas;
pub use uri::{Scheme, Uri};
