//! Persists what the service reports (bindings) and logs security events, on its own thread so the
//! packet path never waits for the disk. The queue is bounded: when full, events are dropped and counted
//! (bindings are re-sent in full on the next change or refresh, so nothing is lost for good).

use anyhow::Result;
use pbxguard_pbx::{Binding, Event};
use pbxguard_store::Store;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const QUEUE: usize = 65_536;
/// Registrations are written back (and events logged) at most this often, in one transaction: a phone refreshing every
/// minute costs one row write per interval however busy the server is, and a crash loses at most this
/// much (a clean shutdown flushes).
const WRITE_BACK: Duration = Duration::from_millis(250);

enum Msg {
    Event(Event),
    Flush,
}

#[derive(Clone)]
pub(crate) struct Sender {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
}

impl Sender {
    pub(crate) fn send(&self, e: Event) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Msg::Event(e)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub(crate) struct Persister {
    tx: SyncSender<Msg>,
    done: Arc<(Mutex<bool>, Condvar)>,
}

impl Persister {
    /// Writes everything queued so far before returning (bounded wait).
    pub(crate) fn flush(&self) {
        let (m, cv) = &*self.done;
        *m.lock().unwrap_or_else(|p| p.into_inner()) = false;
        if self.tx.send(Msg::Flush).is_ok() {
            let g = m.lock().unwrap_or_else(|p| p.into_inner());
            let _ = cv.wait_timeout_while(g, Duration::from_secs(5), |done| !*done);
        }
    }
}

fn to_row(ext: &str, b: &Binding) -> pbxguard_store::Binding {
    pbxguard_store::Binding {
        extension: ext.to_owned(),
        uri: b.uri.clone(),
        contact: b.contact.clone(),
        expires_at: b.expires_at as i64,
        call_id: b.call_id.clone(),
        cseq: b.cseq,
        q: b.q.map(f64::from),
        source: b.source.to_string(),
        transport: b.transport.to_owned(),
        user_agent: b.user_agent.clone(),
        updated_at: b.updated_at as i64,
    }
}

fn log_event(e: &Event) {
    match e {
        Event::BindingsChanged { extension, bindings } => {
            tracing::debug!(extension, contacts = bindings.len(), "registration changed");
        }
        Event::AuthFailed { source, user, known, method } => {
            tracing::warn!(%source, user, known, method, "authentication failed");
        }
        Event::AuthSucceeded { source, user } => tracing::debug!(%source, user, "authenticated"),
        Event::NonceReplay { source, user } => {
            tracing::warn!(%source, user, "replayed nonce-count refused")
        }
        Event::IdentityMismatch { source, user, aor } => {
            tracing::warn!(%source, user, aor, "authenticated user tried to register another extension");
        }
        Event::Malformed { source, reason } => tracing::info!(%source, reason, "malformed message"),
    }
}

pub(crate) fn start(db: PathBuf) -> Result<(Sender, Persister)> {
    let (tx, rx) = sync_channel(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let done = Arc::new((Mutex::new(false), Condvar::new()));
    let mut store = Store::open(&db)?;
    let d2 = done.clone();
    let dr = dropped.clone();
    std::thread::Builder::new().name("pbxguard-persist".into()).spawn(move || run(&mut store, &rx, &d2, &dr))?;
    Ok((Sender { tx: tx.clone(), dropped }, Persister { tx, done }))
}

fn run(store: &mut Store, rx: &Receiver<Msg>, done: &(Mutex<bool>, Condvar), dropped: &AtomicU64) {
    let mut pending: HashMap<String, Vec<Binding>> = HashMap::new();
    let mut reported_drops = 0;
    let mut next_write = Instant::now() + WRITE_BACK;
    loop {
        // Sleep, then drain: the packet path's sends never wake this thread one by one.
        std::thread::sleep(next_write.saturating_duration_since(Instant::now()));
        let mut flush = false;
        loop {
            match rx.try_recv() {
                Ok(Msg::Event(Event::BindingsChanged { extension, bindings })) => {
                    pending.insert(extension, bindings);
                }
                Ok(Msg::Event(e)) => log_event(&e),
                Ok(Msg::Flush) => flush = true,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        next_write = Instant::now() + WRITE_BACK;
        if !pending.is_empty() {
            let rows: Vec<(String, Vec<pbxguard_store::Binding>)> = pending
                .drain()
                .map(|(ext, bs)| {
                    let rows = bs.iter().map(|b| to_row(&ext, b)).collect();
                    (ext, rows)
                })
                .collect();
            if let Err(e) = store.replace_bindings_batch(rows.iter().map(|(e, r)| (e.as_str(), r.as_slice()))) {
                tracing::error!(error = %e, "saving registrations failed");
            }
        }
        let d = dropped.load(Ordering::Relaxed);
        if d != reported_drops {
            tracing::warn!(dropped = d - reported_drops, "event queue full; events dropped");
            reported_drops = d;
        }
        if flush {
            let (m, cv) = done;
            *m.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cv.notify_all();
        }
    }
}
