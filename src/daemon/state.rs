//! What the packet paths share: the gate (the protection engine, one for every protocol) and the SIP
//! service, each behind its own lock, and where their output goes. Any transport can ask the gate
//! about a source without touching the SIP service (TCP accept today; IAX2, SSH and GUI logins next).
//! Where both are needed the order is always the service, then the gate; each lock is held for one
//! batch of messages (microseconds), never across an await.

use super::enforce::{Enforcers, Throttles};
use super::persist;
use pbxguard_pbx::{Service, Transmit};
use pbxguard_shield::Shield;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::Duration;

pub(crate) struct State {
    gate: Mutex<Shield>,
    sip: Mutex<Service>,
    /// Where the services' events go (the store's writer).
    pub(crate) events: persist::Sender,
    enforcers: Enforcers,
    throttles: Arc<Throttles>,
    /// When the SIP service next needs its clock (ms; `u64::MAX`: nothing pending), and the thread
    /// that sleeps until then: woken early when a message brings the deadline forward.
    deadline: AtomicU64,
    timer: OnceLock<Thread>,
}

/// The timer thread also wakes this often with nothing due: a safety net, since every change to the
/// service goes through `sip_then_gate` or `with_gate`, which bring the deadline forward.
const IDLE_WAKE: Duration = Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock is a bug, but the state is still consistent enough to keep
    // serving: recover rather than take every listener down.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl State {
    pub(crate) fn new(gate: Shield, sip: Service, events: persist::Sender, mut enforcers: Enforcers) -> Arc<Self> {
        let throttles = Arc::new(Throttles::default());
        enforcers.push(throttles.clone());
        Arc::new(Self {
            gate: Mutex::new(gate),
            sip: Mutex::new(sip),
            events,
            enforcers,
            throttles,
            deadline: AtomicU64::new(0),
            timer: OnceLock::new(),
        })
    }

    /// The gate alone, for any transport: `f`'s decisions are enforced before the lock is released.
    pub(crate) fn with_gate<R>(&self, f: impl FnOnce(&mut Shield) -> R) -> R {
        let r = {
            let mut gate = lock(&self.gate);
            let r = f(&mut gate);
            self.enforce(&mut gate);
            r
        };
        if !self.throttles.is_empty() {
            let mut sip = lock(&self.sip);
            self.apply_throttles(&mut sip);
            self.bring_forward(&sip);
        }
        r
    }

    /// Read-only look at the gate (metrics).
    pub(crate) fn gate(&self) -> MutexGuard<'_, Shield> {
        lock(&self.gate)
    }

    /// Read-only look at the SIP service (metrics).
    pub(crate) fn sip(&self) -> MutexGuard<'_, Service> {
        lock(&self.sip)
    }

    /// The SIP service with the gate: `f`'s events and decisions are handed on while both locks are
    /// held, so they reach the store in the order they happened across every thread (an operator's
    /// ban applied by the reload thread must not be overwritten by a flood ban drained just before it
    /// on a UDP worker but queued after it; a "call started" is queued before the forwarded INVITE
    /// leaves). What the service forwards is appended to `tx`, to be sent after the locks are released.
    pub(crate) fn with_sip<R>(&self, tx: &mut Vec<Transmit>, f: impl FnOnce(&mut Shield, &mut Service) -> R) -> R {
        self.sip_then_gate(tx, f, false)
    }

    /// `timer`: the call comes from the timer thread, which sets the deadline (it may move it later);
    /// anyone else only brings it forward, and wakes the timer thread when they do. Both under the
    /// service's lock, so no deadline is lost between the two.
    fn sip_then_gate<R>(
        &self,
        tx: &mut Vec<Transmit>,
        f: impl FnOnce(&mut Shield, &mut Service) -> R,
        timer: bool,
    ) -> R {
        let mut sip = lock(&self.sip);
        let mut gate = lock(&self.gate);
        let r = f(&mut gate, &mut sip);
        while let Some(e) = sip.poll_event() {
            self.events.send(persist::Msg::Event(e));
        }
        self.enforce(&mut gate);
        drop(gate);
        self.apply_throttles(&mut sip);
        while let Some(t) = sip.poll_transmit() {
            tx.push(t);
        }
        if timer {
            self.deadline.store(sip.poll_timeout().unwrap_or(u64::MAX), Ordering::Release);
        } else {
            self.bring_forward(&sip);
        }
        r
    }

    /// Under the service's lock: wakes the timer thread if the service now needs its clock sooner.
    fn bring_forward(&self, sip: &Service) {
        let next = sip.poll_timeout().unwrap_or(u64::MAX);
        if next < self.deadline.fetch_min(next, Ordering::AcqRel)
            && let Some(t) = self.timer.get()
        {
            t.unpark();
        }
    }

    /// The SIP service's clock: sleeps until the service next needs it (quinn-style `poll_timeout`),
    /// runs what is due and sends what that produced. Never returns.
    pub(crate) fn run_timers(&self, send: impl Fn(&mut Vec<Transmit>)) {
        let _ = self.timer.set(std::thread::current());
        let mut tx = Vec::new();
        loop {
            let now = pbxguard_app::clock::now_ms();
            self.sip_then_gate(
                &mut tx,
                |_, sip| {
                    if sip.poll_timeout().is_some_and(|d| d <= now) {
                        sip.handle_timeout(now);
                    }
                },
                true,
            );
            send(&mut tx);
            let next = self.deadline.load(Ordering::Acquire);
            let wait = Duration::from_millis(next.saturating_sub(pbxguard_app::clock::now_ms())).min(IDLE_WAKE);
            if !wait.is_zero() {
                std::thread::park_timeout(wait);
            }
        }
    }

    fn enforce(&self, gate: &mut Shield) {
        while let Some(d) = gate.poll_decision() {
            self.enforcers.enforce(&d);
        }
    }

    fn apply_throttles(&self, sip: &mut Service) {
        for (user, until_ms) in self.throttles.take() {
            sip.throttle_user(user, until_ms);
        }
    }
}
