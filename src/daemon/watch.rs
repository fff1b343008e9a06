//! Sleeping until a file changes (inotify), so that threads following files (sshd's log, the
//! database's write-ahead log, the TLS certificate) cost nothing while nothing happens, instead of
//! waking several times a second to look.
//!
//! A path is watched twice: the file itself (its inode: writes, truncation) and its name in its
//! directory (created, renamed over, deleted: rotation, `rename(tmp, path)`). When a new file takes
//! the name, the watch moves to it. Events for other names in the directory are read and ignored, and
//! the directory watch asks only for names appearing and disappearing, so a busy `/var/log` costs
//! little. Callers keep a slow safety look of their own (`wait`'s timeout): inotify says nothing about
//! network filesystems, and a queue overflow is reported as a change.
#![allow(unsafe_code)]

use super::changes::{Hub, Subscription};
use pbxguard_store::Topic;
use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FILE_MASK: u32 = libc::IN_MODIFY | libc::IN_ATTRIB | libc::IN_CLOSE_WRITE;
const DIR_MASK: u32 = libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_MOVED_FROM | libc::IN_DELETE;

pub(crate) struct FileWatch {
    /// None: inotify is not available (or out of instances), and `wait` looks every [`POLL`].
    inotify: Option<OwnedFd>,
    bell: Bell,
    /// Watch descriptor → the watched paths it stands for: a file's inode, or a directory and the
    /// names in it that matter.
    wds: HashMap<i32, Watched>,
    paths: Vec<PathBuf>,
    /// A path could not be watched (its directory is missing, or the watch limit was reached): `wait`
    /// then looks every [`POLL`], as without inotify.
    partial: bool,
}

enum Watched {
    File,
    Dir(Vec<OsString>),
}

/// Without inotify, or with a path that cannot be watched, a waiter looks this often.
pub(crate) const POLL: Duration = Duration::from_millis(250);

/// Wakes a [`FileWatch`]'s waiter from another thread (an eventfd): news that does not come through a
/// file, such as a settings change or a line from journalctl.
#[derive(Clone)]
pub(crate) struct Bell(Option<Arc<OwnedFd>>);

impl Bell {
    fn new() -> Self {
        // SAFETY: no pointer arguments; the descriptor returned is owned from here on.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        // SAFETY: `fd` was just returned by eventfd and nothing else owns it.
        Self((fd >= 0).then(|| Arc::new(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    pub(crate) fn ring(&self) {
        if let Some(fd) = &self.0 {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a live buffer. A full counter (EAGAIN) means it rang already.
            let _ = unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        }
    }

    /// Clears a ring; true if there was one.
    fn answer(&self) -> bool {
        let Some(fd) = &self.0 else { return false };
        let mut n = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer.
        unsafe { libc::read(fd.as_raw_fd(), n.as_mut_ptr().cast(), n.len()) == 8 }
    }
}

fn inotify() -> Option<OwnedFd> {
    // SAFETY: no pointer arguments; the descriptor returned is owned from here on.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
    if fd < 0 {
        tracing::warn!(error = %io::Error::last_os_error(), "inotify unavailable; files are looked at four times a second");
        return None;
    }
    // SAFETY: `fd` was just returned by inotify_init1 and nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl FileWatch {
    pub(crate) fn new() -> Self {
        Self { inotify: inotify(), bell: Bell::new(), wds: HashMap::new(), paths: Vec::new(), partial: false }
    }

    /// A watch whose bell rings when `wants` change in the store, and the subscription that says which.
    pub(crate) fn with_topics(hub: &Hub, wants: &[Topic]) -> (Self, Subscription) {
        let watch = Self::new();
        let bell = watch.bell();
        let topics = hub.subscribe_ringing(wants, move || bell.ring());
        (watch, topics)
    }

    pub(crate) fn bell(&self) -> Bell {
        self.bell.clone()
    }

    /// Forgets every watched path (the bell stays).
    pub(crate) fn clear(&mut self) {
        if !self.wds.is_empty() {
            self.inotify = inotify();
            self.wds.clear();
        }
        self.paths.clear();
        self.partial = false;
    }

    /// Follows `path`, which need not exist yet (its directory must). Watching a path twice is harmless.
    /// On an error the path is still looked at, every [`POLL`].
    pub(crate) fn watch(&mut self, path: &Path) -> io::Result<()> {
        let r = self.watch_name(path);
        self.partial |= r.is_err();
        r
    }

    fn watch_name(&mut self, path: &Path) -> io::Result<()> {
        let (dir, name) = match (path.parent(), path.file_name()) {
            (Some(d), Some(n)) => (if d.as_os_str().is_empty() { Path::new(".") } else { d }, n),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: not a file path", path.display()),
                ));
            }
        };
        let wd = self.add(dir, DIR_MASK)?;
        match self.wds.entry(wd).or_insert_with(|| Watched::Dir(Vec::new())) {
            Watched::Dir(names) if !names.iter().any(|n| n == name) => names.push(name.to_owned()),
            _ => {}
        }
        if !self.paths.iter().any(|p| p == path) {
            self.paths.push(path.to_owned());
        }
        self.watch_file(path);
        Ok(())
    }

    /// Follows the file now at `path` (its inode), not the name: for a file that is never replaced,
    /// without waking for its neighbours in a busy directory.
    pub(crate) fn watch_inode(&mut self, path: &Path) -> io::Result<()> {
        let wd = self.add(path, FILE_MASK)?;
        self.wds.entry(wd).or_insert(Watched::File);
        Ok(())
    }

    /// The file under the name now (a new inode after a rotation); absent files are watched by name only.
    fn watch_file(&mut self, path: &Path) {
        if let Ok(wd) = self.add(path, FILE_MASK) {
            self.wds.entry(wd).or_insert(Watched::File);
        }
    }

    fn add(&self, path: &Path, mask: u32) -> io::Result<i32> {
        let Some(fd) = &self.inotify else { return Err(io::Error::other("inotify unavailable")) };
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
        // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), mask) };
        if wd < 0 { Err(io::Error::last_os_error()) } else { Ok(wd) }
    }

    /// Waits up to `timeout` for a change to a watched path or a ring: true when one came (or events
    /// were lost), false when the time passed without one. Without inotify, or with a path that could
    /// not be watched, it waits at most [`POLL`]: the caller looks at its files after every wait.
    pub(crate) fn wait(&mut self, timeout: Duration) -> bool {
        let timeout = if self.inotify.is_none() || self.partial { timeout.min(POLL) } else { timeout };
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let fd = |o: Option<&OwnedFd>| o.map_or(-1, |f| f.as_raw_fd());
            let mut pfds = [
                libc::pollfd { fd: fd(self.inotify.as_ref()), events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: fd(self.bell.0.as_deref()), events: libc::POLLIN, revents: 0 },
            ];
            // Rounded up: rounding down would spin through the last fraction of a millisecond.
            let ms = left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
            // SAFETY: two valid pollfds (a negative fd is ignored by poll), for the duration of the call.
            let n = unsafe { libc::poll(pfds.as_mut_ptr(), 2, ms) };
            if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                // Not expected with valid descriptors; behave like a timer rather than spin.
                std::thread::sleep(left);
                return false;
            }
            let rang = pfds[1].revents != 0 && self.bell.answer();
            let changed = pfds[0].revents != 0 && self.read_events();
            if rang || changed {
                return true;
            }
            if left.is_zero() {
                return false;
            }
        }
    }

    /// Drains the queue; true if an event concerns a watched path.
    fn read_events(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        let mut relevant = false;
        let mut renamed: Vec<PathBuf> = Vec::new();
        let Some(fd) = self.inotify.as_ref().map(AsRawFd::as_raw_fd) else { return false };
        loop {
            // SAFETY: reads at most `buf.len()` bytes into `buf`.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            let mut off = 0;
            let head = std::mem::size_of::<libc::inotify_event>();
            while off + head <= n as usize {
                // SAFETY: the kernel wrote a whole event header at `off`; read_unaligned copes with the
                // byte buffer's alignment.
                let ev: libc::inotify_event = unsafe { std::ptr::read_unaligned(buf[off..].as_ptr().cast()) };
                let name_bytes = &buf[off + head..(off + head + ev.len as usize).min(n as usize)];
                let name = OsStr::from_bytes(name_bytes.split(|&b| b == 0).next().unwrap_or_default());
                off += head + ev.len as usize;
                if ev.mask & libc::IN_Q_OVERFLOW != 0 {
                    // A rotation's event may be among those lost: follow whatever holds each name now.
                    relevant = true;
                    renamed.extend(self.paths.iter().cloned());
                    continue;
                }
                if ev.mask & libc::IN_IGNORED != 0 {
                    self.wds.remove(&ev.wd);
                    continue;
                }
                match self.wds.get(&ev.wd) {
                    Some(Watched::File) => relevant = true,
                    Some(Watched::Dir(names)) if names.iter().any(|n| n == name) => {
                        relevant = true;
                        if ev.mask & (libc::IN_CREATE | libc::IN_MOVED_TO) != 0 {
                            renamed.extend(self.paths.iter().filter(|p| p.file_name() == Some(name)).cloned());
                        }
                    }
                    _ => {}
                }
            }
        }
        for p in renamed {
            self.watch_file(&p);
        }
        relevant
    }
}

/// A look at the database every this often even without an event: a safety net for filesystems that
/// do not report changes (NFS).
const DB_SAFETY_LOOK: Duration = Duration::from_secs(5);

/// The change feed sleeps until a commit writes the database's files.
impl pbxguard_store::Wake for FileWatch {
    fn wait(&mut self, timeout: Duration) -> bool {
        Self::wait(self, timeout.min(DB_SAFETY_LOOK))
    }
}

/// The change feed of the database at `db`, woken by its files changing; looking every [`POLL`] if
/// they cannot be watched. The files themselves are watched, not their names: they stay while the daemon holds
/// connections, and the data directory also holds `metrics.prom`, replaced every second.
pub(crate) fn feed(db: &Path) -> pbxguard_store::Result<pbxguard_store::SqliteFeed> {
    let feed = pbxguard_store::SqliteFeed::open(db)?;
    let mut w = FileWatch::new();
    for f in pbxguard_store::SqliteFeed::files(db) {
        if let Err(e) = w.watch_inode(&f).or_else(|_| w.watch(&f)) {
            tracing::warn!(error = %e, "cannot watch the database files; looking for changes four times a second");
        }
    }
    Ok(feed.waking_with(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn writes_rotation_and_replacement_wake_and_other_files_do_not() {
        let dir = std::env::temp_dir().join(format!("pbxguard-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("auth.log");
        let append =
            |text: &[u8]| std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(text).unwrap();
        let mut w = FileWatch::new();
        w.watch(&log).unwrap();
        let short = Duration::from_millis(50);
        assert!(!w.wait(short), "nothing happened yet");
        std::fs::write(dir.join("other"), "x").unwrap();
        assert!(!w.wait(short), "another file in the directory");
        std::fs::write(&log, "created\n").unwrap();
        assert!(w.wait(short), "the file appears");
        while w.wait(short) {}
        append(b"line\n");
        assert!(w.wait(short), "a line appended");
        std::fs::rename(&log, dir.join("auth.log.1")).unwrap();
        assert!(w.wait(short), "rotated away");
        std::fs::write(&log, "").unwrap();
        while w.wait(short) {}
        append(b"new\n");
        assert!(w.wait(short), "a line in the new file");
        std::fs::write(dir.join("tmp"), "y").unwrap();
        std::fs::rename(dir.join("tmp"), &log).unwrap();
        assert!(w.wait(short), "replaced by rename");
        while w.wait(short) {}
        append(b"again\n");
        assert!(w.wait(short), "the replacement is followed");
        let bell = w.bell();
        std::thread::spawn(move || bell.ring());
        assert!(w.wait(Duration::from_secs(10)), "rung from another thread");
        assert!(!w.wait(short), "one ring, one wake");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
