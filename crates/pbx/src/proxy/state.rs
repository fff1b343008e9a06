//! The proxy's tables and what every part of it shares: the RFC 3261 timer values, the caps, the
//! transactions, dialogs and relays as stored, and the one heap of deadlines that drives them.

use super::fraud::Fraud;
use crate::dialplan::Trunk;
use crate::fifo::FifoMap;
use crate::transport::{Target, Transmit};
use pbxguard_shield::FraudGuard;
use pbxguard_sip::{Limits, Message};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

/// RFC 3261 T1 and the derived timers, ms.
pub(super) const T1: u64 = 500;
pub(super) const T2: u64 = 4_000;
pub(super) const TIMER_B: u64 = 64 * T1;
/// Timer C (§16.6 step 11): more than three minutes with only provisional responses ends the branch.
pub(super) const TIMER_C: u64 = 180_000;
/// How long finished transactions and stateless relays are remembered, for retransmissions.
pub(super) const LINGER: u64 = 64 * T1;
/// Caps on every table; past them new calls get 503 and relays evict the oldest.
const MAX_CALLS: usize = 50_000;
/// Call set-ups one extension may have ringing at once (internal calls included): with stolen
/// credentials, unanswered INVITEs must not fill the tables.
pub(crate) const MAX_PENDING_PER_CALLER: u32 = 16;
/// Largest INVITE the proxy forwards; real SDP offers are a few kilobytes. Bounds what each pending
/// call keeps in memory.
pub(crate) const MAX_INVITE: usize = 16 * 1024;
const MAX_RELAYS: usize = 100_000;

/// Builds the forwarded request for one branch, given its Via branch.
pub(crate) type BuildRequest<'a> = Box<dyn Fn(&str) -> Option<Vec<u8>> + 'a>;

/// One fork branch: where to, how to build the request, and the trunk's credentials if it has any.
pub(crate) type Branch<'a> = (Target, BuildRequest<'a>, Option<Arc<Trunk>>);

/// Who placed a call and where it goes, for the calls list and the fraud counters.
#[derive(Debug, Clone)]
pub(crate) struct CallInfo {
    pub(crate) call_id: String,
    pub(crate) caller: String,
    pub(crate) callee: String,
    /// The extension whose fraud counters this call uses (outbound trunk calls only).
    pub(crate) counted: Option<String>,
    /// The party that is a trunk, and its name: the callee of an outbound call, the caller of an
    /// inbound one; `None` between extensions. The other party is then an extension.
    pub(crate) trunk: Option<(Party, String)>,
    /// Longest this call may run once answered, ms: trunk calls only (`calls.max_trunk_duration` or
    /// the extension's own); `None`: no limit (calls between extensions, emergency calls).
    pub(crate) max_ms: Option<u64>,
}

/// One of the two parties of a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Party {
    Caller,
    Callee,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(super) enum ClientState {
    Calling,
    Proceeding,
    /// A final response arrived (or the branch timed out); kept for retransmissions.
    Done,
}

pub(super) struct ClientTx {
    pub(super) server: String,
    pub(super) target: Target,
    pub(super) request: Vec<u8>,
    pub(super) state: ClientState,
    pub(super) next_retx: u64,
    pub(super) interval: u64,
    pub(super) timeout_at: u64,
    pub(super) done_at: u64,
    /// The deadline this entry's live timer is armed for (`u64::MAX`: none).
    pub(super) scheduled: u64,
    /// A trunk with credentials: its 401/407 is answered once, by re-sending with CSeq+1.
    pub(super) auth: Option<Arc<Trunk>>,
    /// CSeq numbers towards the target run this far ahead of the caller's (1 after a re-send).
    pub(super) cseq_shift: i64,
}

pub(super) struct ServerTx {
    pub(super) invite: Vec<u8>,
    pub(super) source: Target,
    pub(super) branches: Vec<String>,
    /// Last response sent upstream, replayed to a retransmitted INVITE.
    pub(super) last: Option<Vec<u8>>,
    pub(super) best: Option<(u16, Vec<u8>)>,
    pub(super) final_code: Option<u16>,
    pub(super) final_at: u64,
    pub(super) canceled: bool,
    /// Timer G (non-2xx final over UDP): next retransmission and interval; 0 when not running.
    pub(super) next_retx: u64,
    pub(super) interval: u64,
    pub(super) call_id: String,
    pub(super) caller: String,
    pub(super) scheduled: u64,
}

pub(crate) struct Dialog {
    pub(super) caller: Target,
    pub(super) callee: Option<Target>,
    pub(super) caller_tag: String,
    pub(super) callee_tag: Option<String>,
    pub(crate) info: CallInfo,
    pub(super) last_activity: u64,
    pub(super) ended_at: Option<u64>,
    pub(super) scheduled: u64,
    /// Added to the CSeq of requests from the caller to the callee (and taken off their responses).
    pub(super) cseq_shift: i64,
    /// The callee is a trunk with credentials: its challenges to in-dialog requests are answered.
    pub(super) callee_auth: Option<Arc<Trunk>>,
    /// Highest CSeq number each party has used in the dialog (the caller's as it sent it, before
    /// `cseq_shift`): a BYE of ours in a party's name must go one further.
    pub(super) caller_cseq: u32,
    pub(super) callee_cseq: Option<u32>,
    /// What hanging up both sides needs, once answered with a limit on its length.
    pub(super) hangup: Option<Box<Hangup>>,
}

impl Dialog {
    /// The party an in-dialog request with these tags is addressed to (RFC 3261 §12.2: the From tag is
    /// the sender's local tag); `None` when the tags name no direction of this dialog.
    pub(super) fn towards(&self, from_tag: Option<&str>, to_tag: Option<&str>) -> Option<Party> {
        if from_tag == Some(self.caller_tag.as_str()) {
            Some(Party::Callee)
        } else if to_tag == Some(self.caller_tag.as_str())
            && from_tag.is_some()
            && from_tag == self.callee_tag.as_deref()
        {
            Some(Party::Caller)
        } else {
            None
        }
    }

    /// Where `party` is reached, once known.
    pub(super) fn address(&self, party: Party) -> Option<Target> {
        match party {
            Party::Caller => Some(self.caller),
            Party::Callee => self.callee,
        }
    }
}

pub(super) struct Relay {
    pub(super) back: Target,
    /// Added to the CSeq of the response on its way back.
    pub(super) cseq_shift: i64,
    /// A request towards a trunk with credentials, kept to be sent again once with them if the trunk
    /// challenges it.
    pub(super) retry: Option<Box<Retry>>,
}

pub(super) struct Retry {
    pub(super) request: Vec<u8>,
    pub(super) dest: Target,
    pub(super) trunk: Arc<Trunk>,
    pub(super) call_id: String,
}

pub(crate) struct Proxy {
    pub(super) servers: HashMap<String, ServerTx>,
    pub(super) clients: HashMap<String, ClientTx>,
    pub(crate) dialogs: HashMap<String, Dialog>,
    /// Stamped with their expiry.
    pub(super) relays: FifoMap<String, Relay>,
    pub(crate) fraud: Fraud,
    pub(crate) max_call_ms: u64,
    /// Deadlines, earliest first: (when, kind, key). An entry whose deadline is not the entity's
    /// `scheduled` any more is stale and skipped, so each entity has one live timer and a tick costs
    /// only what is due, not a scan of every transaction.
    pub(super) timers: Timers,
    /// Set-ups without a final response, per caller.
    pub(super) pending: HashMap<String, u32>,
    pub(super) counter: u64,
    pub(super) seed: u64,
    pub(crate) outbox: VecDeque<Transmit>,
    /// Our own BYEs (a call cut at its longest length), by Via branch, until answered or timed out.
    pub(super) byes: HashMap<String, ByeTx>,
    /// Where we listen: the Via and the Route entries of our own BYEs.
    pub(crate) locals: crate::transport::Locals,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Client,
    Server,
    Dialog,
    Bye,
}

/// Deadlines of transactions and dialogs, earliest on top: (when, kind, key).
pub(super) type Timers = BinaryHeap<Reverse<(u64, Kind, String)>>;

/// Arms `key`'s timer for `at` unless it is already armed for earlier.
pub(super) fn arm(timers: &mut Timers, scheduled: &mut u64, kind: Kind, key: &str, at: u64) {
    if at < *scheduled {
        *scheduled = at;
        timers.push(Reverse((at, kind, key.to_owned())));
    }
}

pub(super) fn server_key(branch: &str, source: SocketAddr) -> String {
    format!("{branch}\u{0}{source}")
}

pub(super) fn reparse(data: &[u8]) -> Option<Message<'_>> {
    Message::parse(data, &Limits::default()).ok()
}

/// A dialog the clock ended, for the service to turn into events.
pub(crate) enum DialogEnd {
    /// No in-dialog request for `calls.max_duration`: a party vanished without BYE.
    Silent(CallInfo),
    /// Answered `after_ms` ago, it reached its longest length (`limit_ms`): BYE sent to both parties.
    Cut { info: CallInfo, after_ms: u64, limit_ms: u64 },
}

/// The outcome of a call set-up that the service turns into events.
pub(crate) enum CallOutcome {
    Answered(String),
    Failed { call_id: String, status: u16 },
}

impl Proxy {
    pub(crate) fn new(seed: u64, fraud: FraudGuard) -> Self {
        Self {
            servers: HashMap::new(),
            clients: HashMap::new(),
            dialogs: HashMap::new(),
            relays: FifoMap::new(MAX_RELAYS),
            fraud: Fraud::new(fraud),
            max_call_ms: 4 * 3_600_000,
            timers: BinaryHeap::new(),
            pending: HashMap::new(),
            counter: 0,
            seed,
            outbox: VecDeque::new(),
            byes: HashMap::new(),
            locals: crate::transport::Locals::default(),
        }
    }

    pub(crate) fn pending(&self, caller: &str) -> u32 {
        self.pending.get(caller).copied().unwrap_or(0)
    }

    pub(super) fn settle(&mut self, caller: &str) {
        if let Some(n) = self.pending.get_mut(caller) {
            *n -= 1;
            if *n == 0 {
                self.pending.remove(caller);
            }
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.servers.len() >= MAX_CALLS || self.dialogs.len() >= MAX_CALLS
    }

    pub(crate) fn table_size(&self) -> usize {
        self.servers.len() + self.clients.len() + self.dialogs.len() + self.relays.len() + self.byes.len()
    }

    pub(super) fn branch(&mut self, stateless: bool) -> String {
        self.counter += 1;
        format!("z9hG4bKpg{}{:x}x{:x}", if stateless { 's' } else { 'f' }, self.seed, self.counter)
    }

    pub(super) fn send(&mut self, target: Target, data: Vec<u8>) {
        self.outbox.push_back(Transmit { target, data });
    }
}

/// What cutting an answered call needs, kept in its dialog.
pub(crate) struct Hangup {
    pub(super) answered_at: u64,
    /// When the call is cut: answered + its limit.
    pub(super) deadline: u64,
    /// The caller's identity as it sent it (From of the INVITE, with its tag), and the callee's (To of
    /// the 2xx, with its tag).
    pub(super) caller_id: String,
    pub(super) callee_id: String,
    /// Remote targets: the Contact URI each party gave.
    pub(super) caller_contact: String,
    pub(super) callee_contact: String,
    /// Proxies between us and each party, nearest first.
    pub(super) route_to_caller: Vec<String>,
    pub(super) route_to_callee: Vec<String>,
}

/// One BYE of ours, until answered or Timer F.
pub(super) struct ByeTx {
    pub(super) target: Target,
    pub(super) request: Vec<u8>,
    /// Timer E (UDP only): next retransmission and interval; interval 0 over TCP and TLS.
    pub(super) next_retx: u64,
    pub(super) interval: u64,
    pub(super) timeout_at: u64,
    pub(super) scheduled: u64,
    /// A trunk with credentials: its 401/407 to this BYE is answered once.
    pub(super) auth: Option<Arc<Trunk>>,
}
