//! The one enforcement path. Every decision of the protection engine, whatever raised it (a SIP
//! detector, an operator's `bans add`, later SSH, IAX2 and GUI logins), reaches every enforcer through
//! [`Enforcer::enforce`], in the order the engine made them: the SIP service's throttles, the store,
//! the reporter and the live feed today; the nftables sets when the firewall lands. The in-process
//! gate needs no enforcer: a decision is made in its own ban ledger, so it is in force before anyone
//! hears of it.

use pbxguard_shield::Decision;
use std::sync::Mutex;

/// Carries out decisions. Called under the gate's lock, in decision order: it must never block (queue
/// the work, bounded, and count what overflows).
pub(crate) trait Enforcer: Send + Sync {
    fn enforce(&self, d: &Decision);
}

#[derive(Default)]
pub(crate) struct Enforcers {
    list: Vec<Box<dyn Enforcer>>,
}

impl Enforcers {
    pub(crate) fn push(&mut self, e: impl Enforcer + 'static) {
        self.list.push(Box::new(e));
    }

    pub(crate) fn enforce(&self, d: &Decision) {
        for e in &self.list {
            e.enforce(d);
        }
    }
}

/// Throttles of SIP extensions under a distributed attack, waiting for the SIP service. The gate's
/// lock is held when they are decided and the service's lock must never be taken after it (one lock
/// order: service, then gate), so they are queued here and applied the next time the service is held.
#[derive(Default)]
pub(crate) struct Throttles {
    pending: Mutex<Vec<(String, u64)>>,
}

impl Throttles {
    pub(crate) fn take(&self) -> Vec<(String, u64)> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }
}

impl Enforcer for std::sync::Arc<Throttles> {
    fn enforce(&self, d: &Decision) {
        if let Decision::ThrottleUser { user, until_ms } = d {
            self.pending.lock().unwrap_or_else(|p| p.into_inner()).push((user.clone(), *until_ms));
        }
    }
}
