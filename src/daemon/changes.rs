//! One reader of the store's change feed for the whole daemon: a thread follows it (through
//! `pbxguard_store::ChangeFeed`, whatever the backend) and hands each subscriber the topics it asked
//! for. The threads that apply changes (reload, firewall, SSH guard, nftables) sleep until something
//! they care about changed, instead of each polling the database.

use pbxguard_store::{ChangeFeed, Topic};
use std::collections::BTreeSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A page of the feed; a reader that fell further behind than this reloads everything.
const PAGE: i64 = 10_000;

struct Sub {
    wants: Vec<Topic>,
    pending: Mutex<BTreeSet<Topic>>,
    ready: Condvar,
    /// Also told, for a consumer that sleeps on something else than `ready` (a file watch).
    ring: Option<Box<dyn Fn() + Send + Sync>>,
}

#[derive(Default)]
pub(crate) struct Hub {
    subs: Mutex<Vec<Arc<Sub>>>,
}

/// What one consumer is told: the topics changed since it last asked.
pub(crate) struct Subscription(Arc<Sub>);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// Topics in `wants` (all of them if empty), from now on.
    pub(crate) fn subscribe(&self, wants: &[Topic]) -> Subscription {
        self.add(wants, None)
    }

    /// As [`Hub::subscribe`], and `ring` is called whenever topics are pending, for a consumer that
    /// waits on something else too.
    pub(crate) fn subscribe_ringing(&self, wants: &[Topic], ring: impl Fn() + Send + Sync + 'static) -> Subscription {
        self.add(wants, Some(Box::new(ring)))
    }

    fn add(&self, wants: &[Topic], ring: Option<Box<dyn Fn() + Send + Sync>>) -> Subscription {
        let sub = Arc::new(Sub { wants: wants.to_vec(), pending: Mutex::default(), ready: Condvar::new(), ring });
        lock(&self.subs).push(sub.clone());
        Subscription(sub)
    }

    fn publish(&self, topics: &BTreeSet<Topic>) {
        for sub in lock(&self.subs).iter() {
            let mine: Vec<Topic> =
                topics.iter().copied().filter(|t| sub.wants.is_empty() || sub.wants.contains(t)).collect();
            if !mine.is_empty() {
                lock(&sub.pending).extend(mine);
                sub.ready.notify_all();
                if let Some(ring) = &sub.ring {
                    ring();
                }
            }
        }
    }

    /// Follows `feed` on a thread of its own from its newest change on.
    pub(crate) fn start(self: &Arc<Self>, mut feed: impl ChangeFeed + 'static) -> std::io::Result<()> {
        let hub = self.clone();
        let mut last = match feed.last_change() {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "reading the change feed failed; changes made by the CLI need a restart");
                return Ok(());
            }
        };
        std::thread::Builder::new().name("pbxguard-changes".into()).spawn(move || {
            loop {
                match feed.next_changes(last, PAGE, Duration::from_secs(3600)) {
                    Ok(changes) if !changes.is_empty() => {
                        last = changes.last().map_or(last, |c| c.id);
                        let topics: BTreeSet<Topic> = if changes.len() as i64 == PAGE {
                            Topic::ALL.into_iter().collect()
                        } else {
                            changes.iter().map(|c| c.topic).collect()
                        };
                        tracing::debug!(?topics, "changes committed");
                        hub.publish(&topics);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the change feed failed; trying again in a second");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
        })?;
        Ok(())
    }
}

impl Subscription {
    /// The topics changed since the last call, waiting up to `timeout` (forever if `None`) for one.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> BTreeSet<Topic> {
        let end = timeout.map(|t| Instant::now() + t);
        let mut pending = lock(&self.0.pending);
        while pending.is_empty() {
            match end {
                None => pending = self.0.ready.wait(pending).unwrap_or_else(|e| e.into_inner()),
                Some(end) => {
                    let left = end.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    pending = self.0.ready.wait_timeout(pending, left).unwrap_or_else(|e| e.into_inner()).0;
                }
            }
        }
        std::mem::take(&mut *pending)
    }

    /// The topics changed since the last call, without waiting.
    pub(crate) fn take(&self) -> BTreeSet<Topic> {
        std::mem::take(&mut *lock(&self.0.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_subscriber_gets_only_its_topics_once_and_a_waiter_wakes_at_once() {
        let hub = Arc::new(Hub::default());
        let fw = hub.subscribe(&[Topic::Firewall]);
        let all = hub.subscribe(&[]);
        let waiter = std::thread::spawn(move || {
            let t = Instant::now();
            (fw.wait(Some(Duration::from_secs(10))), t.elapsed(), fw)
        });
        hub.publish(&[Topic::Settings, Topic::Bans].into_iter().collect());
        hub.publish(&[Topic::Firewall].into_iter().collect());
        let (got, took, fw) = waiter.join().unwrap();
        assert_eq!(got, [Topic::Firewall].into_iter().collect());
        assert!(took < Duration::from_secs(5));
        assert!(fw.take().is_empty(), "told once");
        assert_eq!(all.take(), [Topic::Settings, Topic::Bans, Topic::Firewall].into_iter().collect());
        assert!(all.wait(Some(Duration::from_millis(50))).is_empty());
    }
}
