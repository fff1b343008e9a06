use std::net::SocketAddr;

/// One registration as the location service holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub uri: String,
    /// The Contact value as sent (URI in brackets plus header parameters other than `expires`).
    pub contact: String,
    /// Unix seconds.
    pub expires_at: u64,
    pub call_id: String,
    pub cseq: u32,
    pub q: Option<f32>,
    pub source: SocketAddr,
    pub transport: &'static str,
    pub user_agent: Option<String>,
    pub updated_at: u64,
}

/// What the services report to the daemon: state to persist and security signals to log (and, with
/// the shield, to act on).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The complete current set of bindings of an extension (empty: none left).
    BindingsChanged {
        extension: String,
        bindings: Vec<Binding>,
    },
    /// A digest response did not verify. `known` tells whether the user exists; it is for the operator's
    /// log only and never changes what the client sees.
    AuthFailed {
        source: SocketAddr,
        user: String,
        known: bool,
        method: &'static str,
    },
    /// Credentials reused a nonce-count already seen for their nonce (RFC 7616 §3.4).
    NonceReplay {
        source: SocketAddr,
        user: String,
    },
    /// Authenticated as one extension but registering another.
    IdentityMismatch {
        source: SocketAddr,
        user: String,
        aor: String,
    },
    /// A message that failed to parse or failed the sanity checks.
    Malformed {
        source: SocketAddr,
        reason: String,
    },
    /// A request from an attack tool (silently dropped).
    Scanner {
        source: SocketAddr,
        evidence: String,
    },
    /// Authenticated, but from outside the extension's ACL group.
    AclDenied {
        source: SocketAddr,
        user: String,
        group: String,
        rule: Option<String>,
    },
    /// A REGISTER for an extension that does not exist.
    UnknownUser {
        source: SocketAddr,
        user: String,
    },
    /// An INVITE was authorised and forwarded. `caller` is the extension or `trunk:NAME`.
    CallStarted {
        call_id: String,
        source: SocketAddr,
        caller: String,
        callee: String,
        category: &'static str,
        trunk: Option<String>,
    },
    CallAnswered {
        call_id: String,
    },
    /// The call ended: `status` 200 for a BYE, else the final status of a failed set-up (or 408 when a
    /// silent dialog was dropped after the longest call time).
    CallEnded {
        call_id: String,
        status: u16,
    },
    /// A trunk call reached its longest length (`calls.max_trunk_duration` or the extension's own):
    /// the proxy sent BYE to both parties. `number`: the other party (`trunk:NAME` for an inbound
    /// call); `duration_ms` from the answer. It also ends the call in the calls log.
    CallCut {
        call_id: String,
        extension: String,
        number: String,
        trunk: String,
        duration_ms: u64,
        limit_ms: u64,
    },
    /// A call refused by policy (Class of Service, toll-fraud limit, suspension): a security event.
    CallRefused {
        source: SocketAddr,
        extension: String,
        number: String,
        status: u16,
        rule: String,
    },
    /// A trunk call unlike what the extension usually calls (a new country, premium-rate, outside
    /// business hours); `suspended`: the extension was suspended for it and the call refused.
    UnusualCall {
        extension: String,
        number: String,
        detail: String,
        suspended: bool,
    },
    /// Outbound calls of an extension stopped until an operator re-enables it.
    ExtensionSuspended {
        extension: String,
        rule: String,
    },
    /// Outbound registration at a trunk succeeded or failed (only changes and failures are reported).
    TrunkRegistration {
        trunk: String,
        registered: bool,
        detail: String,
    },
}
