//! The store for HTTP handlers: SQLite calls block, so they run on tokio's blocking threads, each
//! with a connection from a small pool (WAL lets readers run beside the daemon's writer). At most
//! `MAX` run at once, so a burst of requests queues here instead of opening connections without end.

use pbxguard_store::Store;
use std::path::PathBuf;
use std::sync::Mutex;
use tokio::sync::Semaphore;

const MAX: usize = 8;

pub(crate) struct Db {
    data: PathBuf,
    idle: Mutex<Vec<Store>>,
    running: Semaphore,
}

impl Db {
    pub(crate) fn new(data: PathBuf) -> Self {
        Self { data, idle: Mutex::new(Vec::new()), running: Semaphore::new(MAX) }
    }

    /// Opens the pool's connections in the background at start, so the first viewers do not wait for
    /// them (the file's checks, and SQLite reading the schema at a connection's first statement).
    pub(crate) fn warm(self: &std::sync::Arc<Self>) {
        let me = self.clone();
        let spawned = std::thread::Builder::new().name("pbxguard-gui-db".into()).spawn(move || {
            crate::daemon::nice::lower_this_thread(10);
            for _ in 0..MAX {
                match pbxguard_app::open_store(&me.data) {
                    // The newest events, as the dashboard shows them: SQLite reads the schema at a
                    // connection's first statement, and the pages' statements are prepared once each.
                    Ok(s) if pbxguard_app::reports::events(&s, &Default::default(), None, None, 50).is_ok() => {
                        me.idle.lock().unwrap_or_else(|e| e.into_inner()).push(s)
                    }
                    Ok(_) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "opening the GUI's database connections");
                        break;
                    }
                }
            }
        });
        if let Err(e) = spawned {
            tracing::debug!(error = %e, "the GUI's connections open on demand");
        }
    }

    /// Runs `f` with a connection, off the async threads.
    pub(crate) async fn run<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        f: impl FnOnce(&mut Store) -> pbxguard_app::Result<T> + Send + 'static,
    ) -> pbxguard_app::Result<T> {
        let _slot = self.running.acquire().await.map_err(|_| pbxguard_app::Error::Io("shutting down".into()))?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let taken = me.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let mut store = match taken {
                Some(s) => s,
                None => pbxguard_app::open_store(&me.data)?,
            };
            let r = f(&mut store);
            me.idle.lock().unwrap_or_else(|e| e.into_inner()).push(store);
            r
        })
        .await
        .map_err(|e| pbxguard_app::Error::Io(format!("a database task failed: {e}")))?
    }
}
