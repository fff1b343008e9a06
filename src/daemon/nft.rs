//! Kernel enforcement: the gate's bans, blacklists and trusted networks in the nftables sets of table
//! `inet pbxguard` (the ruleset drops banned and blacklisted sources in prerouting, before connection
//! tracking, on every port). Changes go over nfnetlink from this process (a few µs each, whatever
//! else is on the host), never by spawning `nft` (research/firewall.md §2).
//!
//! The enforcer only queues (it runs under the gate's lock); a thread batches what is queued into one
//! kernel transaction. Nothing is lost: a full queue or a failed transaction makes the thread start
//! again from the gate (flush and refill the sets in one transaction), and so do the daemon's start,
//! `firewall.enabled` turning on, and the table being created again. When the daemon stops, the table
//! and its elements stay in the kernel: bans keep holding, and expire by their own timeouts.
//!
//! Fail-open where it must be: without the setting, without the table or without CAP_NET_ADMIN the
//! gate still drops banned sources in-process, and the reason is logged once.
//!
//! Conntrack entries of a newly banned source are not deleted: the drop happens before connection
//! tracking, so an established flow stops at its next packet anyway, and an entry left behind only
//! expires (`conntrack -D` would cost 10-100 ms a ban, a scan of the whole table).

use super::changes::{Hub, Subscription};
use super::enforce::Enforcer;
use super::state::State;
use pbxguard_firewall::bans::{BanSets, Change};
use pbxguard_firewall::netlink::{self, Batch, Reply};
use pbxguard_firewall::ranges::{Cidr, IpRange, merge_cidrs};
use pbxguard_firewall::{TABLE, sets};
use pbxguard_shield::{Decision, ListName, Prefix, PrefixSet};
use pbxguard_store::Topic;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

/// Ban changes queued for the thread; a storm beyond this makes it resynchronise from the gate.
const QUEUE: usize = 65_536;
/// Most ban changes in one transaction (about 100 bytes each).
const PER_BATCH: usize = 8_192;
/// How often the setting, the kernel's table, the trusted networks and the blacklists are checked.
const CHECK: Duration = Duration::from_secs(1);
/// With the firewall off, only a settings change (which wakes the thread) matters: this is a safety net.
const CHECK_OFF: Duration = Duration::from_secs(30);
const ALL_SETS: [&str; 6] =
    [sets::BANNED4, sets::BANNED6, sets::BLACKLIST4, sets::BLACKLIST6, sets::TRUSTED4, sets::TRUSTED6];

enum Msg {
    Ban(Cidr, Option<u64>),
    Unban(Cidr),
    /// The settings changed: check now.
    Check,
}

/// The enforcer half: decisions in, queued for the thread.
pub(crate) struct NftEnforcer {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
}

struct Shared {
    /// The thread holds the kernel's sets in step: only then are decisions worth queueing.
    active: AtomicBool,
    /// A change could not be queued: the thread resynchronises from the gate.
    lost: AtomicBool,
}

/// The thread half, started once the gate exists ([`Pending::spawn`]).
pub(crate) struct Pending {
    rx: Receiver<Msg>,
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
}

fn cidr(p: &Prefix) -> Option<Cidr> {
    Cidr::new(p.addr(), p.prefix_len())
}

impl Enforcer for NftEnforcer {
    fn enforce(&self, d: &Decision) {
        if !self.shared.active.load(Ordering::Acquire) {
            return;
        }
        let msg = match d {
            Decision::Ban(b) => cidr(&b.target).map(|c| Msg::Ban(c, b.expires_ms)),
            Decision::Unban { ban, .. } => cidr(&ban.target).map(Msg::Unban),
            _ => None,
        };
        if let Some(m) = msg
            && self.tx.try_send(m).is_err()
        {
            self.shared.lost.store(true, Ordering::Release);
        }
    }
}

pub(crate) fn enforcer() -> (NftEnforcer, Pending) {
    let (tx, rx) = sync_channel(QUEUE);
    let shared = Arc::new(Shared { active: AtomicBool::new(false), lost: AtomicBool::new(false) });
    (NftEnforcer { tx: tx.clone(), shared: shared.clone() }, Pending { rx, tx, shared })
}

impl Pending {
    /// Follows `firewall.enabled` through `hub`.
    pub(crate) fn spawn(self, state: Arc<State>, db: &Path, hub: &Hub) -> io::Result<()> {
        let db = db.to_owned();
        let tx = self.tx.clone();
        // Full queue: a resynchronisation is coming anyway, and it checks.
        let settings = hub.subscribe_ringing(&[Topic::Settings], move || drop(tx.try_send(Msg::Check)));
        std::thread::Builder::new().name("pbxguard-nft".into()).spawn(move || run(&self, &state, &db, &settings))?;
        Ok(())
    }
}

/// An `AF_NETLINK`/`NETLINK_NETFILTER` socket talking to nf_tables.
struct Netlink {
    sock: Socket,
    seq: u32,
    sndbuf: usize,
    buf: Vec<u8>,
}

/// A transaction the kernel refused: the errno of each refused message.
#[derive(Debug)]
enum TxError {
    Io(io::Error),
    Refused(Vec<i32>),
}

impl std::fmt::Display for TxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Refused(errnos) => {
                let e = io::Error::from_raw_os_error(errnos.first().copied().unwrap_or(0));
                write!(f, "refused by the kernel ({} message(s)): {e}", errnos.len())
            }
        }
    }
}

impl From<io::Error> for TxError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// SO_SNDBUFFORCE: a transaction must be one datagram, and a 200,000-range blacklist is about 10 MB,
/// far over `net.core.wmem_max`. Needs CAP_NET_ADMIN, which writing nf_tables needs anyway.
#[allow(unsafe_code)]
fn force_sndbuf(sock: &Socket, bytes: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: the pointer and length describe a live c_int for the duration of the call; the fd is
    // owned by `sock`.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUFFORCE,
            (&raw const v).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

impl Netlink {
    fn open() -> io::Result<Self> {
        let sock =
            Socket::new(Domain::from(libc::AF_NETLINK), Type::RAW, Some(Protocol::from(libc::NETLINK_NETFILTER)))?;
        // A reply that never comes must not stall the thread for good.
        sock.set_read_timeout(Some(Duration::from_secs(5)))?;
        let _ = sock.set_recv_buffer_size(1 << 20);
        let seq = (pbxguard_app::clock::now_ms() as u32) & 0x7fff_ffff;
        Ok(Self { sock, seq, sndbuf: 0, buf: vec![0; 1 << 16] })
    }

    fn next_seq(&mut self, n: u32) -> u32 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(n.max(1));
        s
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let need = bytes.len() + 4096;
        if need > self.sndbuf {
            // Without the capability the ordinary limit (about 200 kB) may still do.
            if force_sndbuf(&self.sock, need.max(1 << 20)).is_ok() {
                self.sndbuf = need.max(1 << 20);
            }
        }
        self.sock.send(bytes)?;
        Ok(())
    }

    /// Reads replies until `until` says the exchange is over.
    fn read(&mut self, mut until: impl FnMut(&Reply) -> bool) -> io::Result<()> {
        use std::io::Read;
        loop {
            let n = (&self.sock).read(&mut self.buf)?;
            for r in netlink::replies(&self.buf[..n]) {
                let r = r.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                if until(&r) {
                    return Ok(());
                }
            }
        }
    }

    /// Sends one batch and waits until the kernel has processed it: the generation request after it
    /// is answered only then. Returns the generation after the commit.
    fn transact(&mut self, batch: Batch) -> Result<u32, TxError> {
        let (bytes, seqs) = batch.finish();
        self.seq = seqs.end;
        let sync = self.next_seq(1);
        self.send(&bytes)?;
        self.send(&netlink::get_generation(sync))?;
        let mut errors = Vec::new();
        let mut generation = 0;
        self.read(|r| match *r {
            Reply::Status { seq, errno } if errno != 0 && seqs.contains(&seq) => {
                errors.push(errno);
                false
            }
            Reply::Status { seq, .. } => seq == sync,
            Reply::Generation { seq, id } if seq == sync => {
                generation = id;
                true
            }
            _ => false,
        })?;
        if errors.is_empty() { Ok(generation) } else { Err(TxError::Refused(errors)) }
    }

    fn generation(&mut self) -> io::Result<u32> {
        let sync = self.next_seq(1);
        self.send(&netlink::get_generation(sync))?;
        let (mut generation, mut refused) = (None, None);
        self.read(|r| match *r {
            Reply::Generation { seq, id } if seq == sync => {
                generation = Some(id);
                true
            }
            Reply::Status { seq, errno } if seq == sync && errno != 0 => {
                refused = Some(errno);
                true
            }
            _ => false,
        })?;
        if let Some(errno) = refused {
            return Err(io::Error::from_raw_os_error(errno));
        }
        generation.ok_or_else(|| io::Error::other("no generation in the kernel's answer"))
    }

    /// Our sets' handles, in [`ALL_SETS`] order; `None` when the table or one set is missing.
    fn handles(&mut self) -> io::Result<Option<Vec<u64>>> {
        let mut out = Vec::with_capacity(ALL_SETS.len());
        for set in ALL_SETS {
            let seq = self.next_seq(1);
            self.send(&netlink::get_set(TABLE, set, seq))?;
            let (mut handle, mut missing) = (None, false);
            self.read(|r| match r {
                Reply::Set { seq: s, handle: h, .. } if *s == seq => {
                    handle = *h;
                    false
                }
                Reply::Status { seq: s, errno } if *s == seq => {
                    missing = *errno != 0;
                    true
                }
                _ => false,
            })?;
            match handle {
                Some(h) if !missing => out.push(h),
                _ => return Ok(None),
            }
        }
        Ok(Some(out))
    }
}

/// What the thread keeps between rounds.
struct Enforcement {
    nl: Option<Netlink>,
    bans: BanSets,
    /// Set handles when the sets were last filled: different ones mean the table was created again
    /// (by `firewall apply` after `disable`, or by hand) and is empty.
    handles: Option<Vec<u64>>,
    /// The generation after our last transaction: another one means someone else changed the ruleset.
    generation: u32,
    trusted: Option<Vec<Prefix>>,
    blacklist: Option<Arc<PrefixSet<ListName>>>,
    /// Said once until the situation changes.
    said: Option<&'static str>,
    full: bool,
}

impl Enforcement {
    fn say(&mut self, why: &'static str, detail: &str) {
        if self.said != Some(why) {
            tracing::warn!(detail, "{why}");
            self.said = Some(why);
        }
    }

    fn netlink(&mut self) -> Option<&mut Netlink> {
        if self.nl.is_none() {
            match Netlink::open() {
                Ok(nl) => self.nl = Some(nl),
                Err(e) => {
                    self.say(
                        "cannot open a netfilter netlink socket; bans are enforced in-process only",
                        &e.to_string(),
                    );
                    return None;
                }
            }
        }
        self.nl.as_mut()
    }

    /// Is the table there, as we filled it? Cheap when nobody else changed the ruleset.
    fn check_table(&mut self) -> bool {
        let generation = self.generation;
        let known = self.handles.clone();
        let full = self.full;
        let Some(nl) = self.netlink() else { return false };
        let now = match nl.generation() {
            Ok(g) => g,
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                self.say(
                    "nftables refused pbxguard (it needs CAP_NET_ADMIN, see the systemd unit); bans are enforced in-process only",
                    &e.to_string(),
                );
                return false;
            }
            Err(e) => {
                self.nl = None;
                self.say("reading the nftables generation failed; bans are enforced in-process only", &e.to_string());
                return false;
            }
        };
        if now == generation && known.is_some() && !full {
            return true;
        }
        match nl.handles() {
            Ok(Some(h)) => {
                if known.as_ref() != Some(&h) {
                    self.full = true;
                }
                self.handles = Some(h);
                self.generation = now;
                true
            }
            Ok(None) => {
                self.handles = None;
                self.say(
                    "firewall.enabled is true but table inet pbxguard (with its sets) does not exist: run `pbxguard firewall apply`; meanwhile bans are enforced by pbxguard itself, for its own services only",
                    "",
                );
                false
            }
            Err(e) => {
                self.nl = None;
                self.say("reading table inet pbxguard failed; bans are enforced in-process only", &e.to_string());
                false
            }
        }
    }

    /// A batch numbered after everything sent so far, so that a late answer to an earlier request can
    /// never be taken for one about this batch.
    fn batch(&self) -> Batch {
        Batch::new(TABLE, self.nl.as_ref().map_or(1, |nl| nl.seq))
    }

    fn commit(&mut self, batch: Batch) -> Result<(), TxError> {
        let Some(nl) = self.netlink() else { return Err(TxError::Io(io::Error::other("no netlink socket"))) };
        let g = nl.transact(batch)?;
        self.generation = g;
        Ok(())
    }

    /// Empties the six sets and fills them from the gate, in one transaction.
    fn full_sync(&mut self, p: &Pending, state: &State) -> Result<(), TxError> {
        // Decisions made from here on are queued; the ones already queued are in the snapshot.
        p.shared.active.store(true, Ordering::Release);
        p.shared.lost.store(false, Ordering::Release);
        let now = pbxguard_app::clock::now_ms();
        let (bans, trusted, blacklist) = {
            let gate = state.gate();
            while p.rx.try_recv().is_ok() {}
            let bans: Vec<(Cidr, Option<u64>)> =
                gate.bans().filter_map(|b| Some((cidr(&b.target)?, b.expires_ms))).collect();
            (bans, gate.trusted().entries().iter().map(|(p, _)| *p).collect::<Vec<_>>(), gate.blacklist().clone())
        };
        let t = Instant::now();
        let ranges = self.bans.reset(now, bans);
        let mut batch = self.batch();
        for set in ALL_SETS {
            batch.flush(set);
        }
        let (b4, b6): (Vec<_>, Vec<_>) = ranges.into_iter().partition(|(r, _)| !r.is_v6());
        batch.add(sets::BANNED4, b4);
        batch.add(sets::BANNED6, b6);
        add_merged(&mut batch, [sets::TRUSTED4, sets::TRUSTED6], trusted.iter());
        add_merged(&mut batch, [sets::BLACKLIST4, sets::BLACKLIST6], blacklist.entries().iter().map(|(p, _)| p));
        let bytes = batch.len();
        self.commit(batch)?;
        tracing::info!(
            bans = self.bans.len(),
            trusted = trusted.len(),
            blacklisted = blacklist.len(),
            bytes,
            ms = t.elapsed().as_millis() as u64,
            "nftables sets filled from the gate"
        );
        self.trusted = Some(trusted);
        self.blacklist = Some(blacklist);
        self.full = false;
        self.said = None;
        Ok(())
    }

    /// Ban changes, in order, in as few transactions as fit.
    fn apply(&mut self, msgs: &mut Vec<Msg>) -> Result<(), TxError> {
        let now = pbxguard_app::clock::now_ms();
        let mut changes = Vec::new();
        for m in msgs.drain(..) {
            match m {
                Msg::Ban(c, end) => self.bans.ban(now, c, end, &mut changes),
                Msg::Unban(c) => self.bans.unban(now, c, &mut changes),
                Msg::Check => {}
            }
        }
        for chunk in changes.chunks(PER_BATCH) {
            let mut batch = self.batch();
            for ch in chunk {
                match *ch {
                    Change::Put(r, t) => batch.replace(banned_set(&r), &[(r, t)]),
                    Change::Remove(r) => batch.remove(banned_set(&r), &[r]),
                }
            }
            self.commit(batch)?;
        }
        Ok(())
    }

    /// Trusted networks and blacklists, when the gate's changed: each replaced in one transaction.
    fn follow_lists(&mut self, state: &State) -> Result<(), TxError> {
        let (trusted, blacklist) = {
            let gate = state.gate();
            let trusted: Vec<Prefix> = gate.trusted().entries().iter().map(|(p, _)| *p).collect();
            let list = gate.blacklist();
            let same = self.blacklist.as_ref().is_some_and(|b| Arc::ptr_eq(b, list));
            (trusted, (!same).then(|| list.clone()))
        };
        if self.trusted.as_ref() != Some(&trusted) {
            let mut batch = self.batch();
            batch.flush(sets::TRUSTED4);
            batch.flush(sets::TRUSTED6);
            add_merged(&mut batch, [sets::TRUSTED4, sets::TRUSTED6], trusted.iter());
            self.commit(batch)?;
            tracing::info!(networks = trusted.len(), "trusted networks set in nftables");
            self.trusted = Some(trusted);
        }
        if let Some(list) = blacklist {
            let t = Instant::now();
            let mut batch = self.batch();
            batch.flush(sets::BLACKLIST4);
            batch.flush(sets::BLACKLIST6);
            add_merged(&mut batch, [sets::BLACKLIST4, sets::BLACKLIST6], list.entries().iter().map(|(p, _)| p));
            self.commit(batch)?;
            tracing::info!(
                entries = list.len(),
                ms = t.elapsed().as_millis() as u64,
                "blacklists replaced in nftables"
            );
            self.blacklist = Some(list);
        }
        Ok(())
    }
}

fn banned_set(r: &IpRange) -> &'static str {
    if r.is_v6() { sets::BANNED6 } else { sets::BANNED4 }
}

/// Prefixes merged into disjoint ranges (the sets refuse overlaps), IPv4 into `names[0]`, IPv6 into
/// `names[1]`.
fn add_merged<'a>(batch: &mut Batch, names: [&str; 2], prefixes: impl Iterator<Item = &'a Prefix>) {
    let merged = merge_cidrs(prefixes.filter_map(cidr));
    let (v4, v6): (Vec<_>, Vec<_>) = merged.into_iter().partition(|r| !r.is_v6());
    batch.add(names[0], v4.into_iter().map(|r| (r, None)));
    batch.add(names[1], v6.into_iter().map(|r| (r, None)));
}

fn enabled(store: &pbxguard_store::Store) -> bool {
    pbxguard_app::settings::get(store, "firewall.enabled").is_ok_and(|v| v == "true")
}

fn run(p: &Pending, state: &State, db: &Path, settings: &Subscription) {
    let store = match pbxguard_store::Store::open(db) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "the nftables thread cannot open the database; bans are enforced in-process only");
            return;
        }
    };
    let mut on = enabled(&store);
    let mut e = Enforcement {
        nl: None,
        bans: BanSets::new(),
        handles: None,
        generation: 0,
        trusted: None,
        blacklist: None,
        said: None,
        full: true,
    };
    let mut ready = false;
    let mut next_check = Instant::now();
    let mut msgs: Vec<Msg> = Vec::new();
    let (mut retry_at, mut backoff) = (Instant::now(), CHECK);
    loop {
        match p.rx.recv_timeout(next_check.saturating_duration_since(Instant::now())) {
            Ok(m) => {
                let mut m = Some(m);
                while let Some(one) = m.take() {
                    match one {
                        Msg::Check => next_check = Instant::now(),
                        one => msgs.push(one),
                    }
                    if msgs.len() < PER_BATCH * 4 {
                        m = p.rx.try_recv().ok();
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if Instant::now() >= next_check {
            next_check = Instant::now() + CHECK;
            if !settings.take().is_empty() {
                let now_on = enabled(&store);
                if now_on != on {
                    tracing::info!(enabled = now_on, "firewall.enabled changed");
                    on = now_on;
                    e.full = true;
                }
            }
            ready = on && e.check_table();
            if !on {
                next_check = Instant::now() + CHECK_OFF;
            }
            if !ready {
                p.shared.active.store(false, Ordering::Release);
                e.full = true;
                (retry_at, backoff) = (Instant::now(), CHECK);
                msgs.clear();
                continue;
            }
            if p.shared.lost.load(Ordering::Acquire) {
                tracing::warn!(
                    "ban changes came faster than the queue holds; refilling the nftables sets from the gate"
                );
                e.full = true;
            }
            if !e.full
                && let Err(err) = e.follow_lists(state)
            {
                tracing::warn!(error = %err, "updating trusted networks or blacklists in nftables failed; refilling the sets");
                e.full = true;
            }
        }
        if !ready {
            msgs.clear();
            continue;
        }
        if e.full {
            msgs.clear();
            if Instant::now() < retry_at {
                continue;
            }
            match e.full_sync(p, state) {
                Ok(()) => backoff = CHECK,
                Err(err) => {
                    p.shared.active.store(false, Ordering::Release);
                    e.say(
                        "filling the nftables sets failed; bans are enforced in-process only until it succeeds",
                        &err.to_string(),
                    );
                    // A refusal that lasts (no CAP_NET_ADMIN, a set declared differently) must not
                    // rebuild a 10 MB batch every second.
                    retry_at = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    ready = false;
                }
            }
            continue;
        }
        if !msgs.is_empty()
            && let Err(err) = e.apply(&mut msgs)
        {
            tracing::warn!(error = %err, "a ban transaction failed; refilling the nftables sets from the gate");
            e.full = true;
        }
    }
}
