//! The live feed: every decision as it is made, for whoever watches live (the GUI's attack view and
//! its `events` stream). Subscribers that fall behind lose the oldest items, never slow the gate.

use super::enforce::Enforcer;
use pbxguard_shield::Decision;
use tokio::sync::broadcast;

const BACKLOG: usize = 1024;

pub(crate) struct Feed {
    tx: broadcast::Sender<Decision>,
}

impl Feed {
    pub(crate) fn new() -> Self {
        Self { tx: broadcast::channel(BACKLOG).0 }
    }

    /// A live view from now on.
    #[allow(dead_code, reason = "the admin GUI's live attack view subscribes (issue 13)")]
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Decision> {
        self.tx.subscribe()
    }
}

impl Enforcer for std::sync::Arc<Feed> {
    fn enforce(&self, d: &Decision) {
        // No subscriber is normal: nothing is kept then.
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(d.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscriber_sees_decisions_in_order_and_a_slow_one_never_blocks_the_gate() {
        let feed = std::sync::Arc::new(Feed::new());
        let mut rx = feed.subscribe();
        for i in 0..(BACKLOG + 10) {
            feed.enforce(&Decision::Alert { message: i.to_string() });
        }
        // The oldest ten were dropped for this slow subscriber; the rest arrive in order.
        assert!(matches!(rx.try_recv(), Err(broadcast::error::TryRecvError::Lagged(10))));
        assert_eq!(rx.try_recv().ok(), Some(Decision::Alert { message: "10".into() }));
    }
}
