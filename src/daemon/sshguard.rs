//! The SSH guard: follows sshd's log (files, or the journal through `journalctl`), reads each line with
//! the shield's sshd parser and hands what it says to the gate as observations of service `ssh`.
//! Bans take the one enforcement path like any detector's (store, feed, nftables sets: every port).
//!
//! The thread sleeps until a followed file changes (inotify), journalctl sends a line, or the settings
//! change: the line that crosses the threshold is read at once, and an idle server costs nothing. A
//! file is also looked at every few seconds without news (every 250 ms if it cannot be watched: its
//! directory is missing, or inotify is unavailable). Rotation (rename, then a new file) is noticed by
//! the inode: the old file is read to its end before the new one is opened from its start, so no line
//! is lost; a truncated file (copytruncate) is read again from its start once it is seen shorter than
//! what was read (as `tail -F` does: lines written between the copy and the truncation are lost). Only lines written after the
//! guard starts count: failures logged before a restart are not replayed (their bans are in the store).

use super::changes::{Hub, Subscription};
use super::state::State;
use super::watch::{Bell, FileWatch};
use pbxguard_app::clock::now_ms;
use pbxguard_app::ssh::{GuardSettings, LogSource};
use pbxguard_shield::ssh::{self, SshKind};
use pbxguard_shield::{Observation, Service};
use pbxguard_store::prelude::*;
use pbxguard_store::{EventRow, Store, Topic};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::time::Duration;

/// A look at the files even without news from inotify (a safety net, for filesystems that do not
/// report changes).
const SAFETY_LOOK: Duration = Duration::from_secs(5);
/// A longer line is no sshd line: its bytes are skipped up to the next newline, so a hostile writer
/// cannot grow memory.
const MAX_LINE: usize = 16 * 1024;
/// Lines read from one file per poll, so one busy file cannot starve the others.
const READ_CHUNK: usize = 64 * 1024;

/// Follows the settings through `hub`.
pub(crate) fn start(db: PathBuf, state: Arc<State>, hub: &Hub) -> std::io::Result<()> {
    let (mut watch, settings) = FileWatch::with_topics(hub, &[Topic::Settings]);
    std::thread::Builder::new()
        .name("pbxguard-sshguard".into())
        .spawn(move || run(&db, &state, &settings, &mut watch))?;
    Ok(())
}

fn run(db: &Path, state: &State, changed: &Subscription, watch: &mut FileWatch) {
    let store = match Store::open(db) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "SSH guard cannot open the database; it is off");
            return;
        }
    };
    let mut events = match EventWriter::start(db) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "SSH guard cannot start its event writer; it is off");
            return;
        }
    };
    let mut settings: Option<GuardSettings> = None;
    let mut sources = Sources::default();
    let mut rows = Vec::new();
    loop {
        if settings.is_none() || !changed.take().is_empty() {
            match pbxguard_app::settings::ssh_guard(&store) {
                Ok(s) if settings.as_ref() != Some(&s) => {
                    sources = Sources::open(&s, &watch.bell());
                    watch.clear();
                    for f in &sources.files {
                        if let Err(e) = watch.watch(&f.path) {
                            tracing::warn!(path = %f.path.display(), error = %e, "cannot watch the SSH log; looking at it four times a second");
                        }
                    }
                    settings = Some(s);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "SSH guard settings unreadable; keeping the previous ones"),
            }
        }
        let mut handle = |line: &[u8]| {
            if let Some(row) = handle_line(state, line) {
                rows.push(row);
            }
        };
        let got = sources.poll_files(&mut handle) | sources.drain_journal(&mut handle);
        if !rows.is_empty() {
            events.send(std::mem::take(&mut rows));
        }
        // After lines, look again at once: a file is read in chunks, and more may have come.
        if !got {
            watch.wait(SAFETY_LOOK);
        }
    }
}

/// Writes the guard's event rows on a thread of its own: a commit waits for the disk (tens of
/// milliseconds when it is busy), and the line that bans must never wait behind it. Bounded: when the
/// disk falls behind a flood of lines, rows are dropped and counted (bans are not: they travel the
/// enforcement path).
struct EventWriter {
    tx: SyncSender<Vec<EventRow>>,
    dropped: u64,
}

impl EventWriter {
    fn start(db: &Path) -> anyhow::Result<Self> {
        let mut store = Store::open(db)?;
        let (tx, rx) = sync_channel::<Vec<EventRow>>(1024);
        std::thread::Builder::new().name("pbxguard-sshevents".into()).spawn(move || {
            while let Ok(mut rows) = rx.recv() {
                while let Ok(more) = rx.try_recv() {
                    rows.extend(more);
                }
                let now = now_ms() as i64;
                let (keep, age) = (pbxguard_app::EVENTS_KEPT, pbxguard_app::EVENTS_MAX_AGE_MS);
                if let Err(e) = store.append_events(&rows, keep, age, now) {
                    tracing::warn!(error = %e, "saving SSH events failed");
                }
            }
        })?;
        Ok(Self { tx, dropped: 0 })
    }

    fn send(&mut self, rows: Vec<EventRow>) {
        if self.tx.try_send(rows).is_err() {
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                tracing::warn!(
                    batches = self.dropped,
                    "SSH events arrive faster than they can be stored; some were dropped"
                );
            }
        }
    }
}

/// One log line to the gate; returns the event row that records it.
fn handle_line(state: &State, raw: &[u8]) -> Option<EventRow> {
    let text = String::from_utf8_lossy(raw);
    let line = ssh::parse(&text)?;
    let obs = line.observation()?;
    let now = now_ms();
    state.with_gate(|gate| gate.observe_on(now, Service::Ssh, obs));
    let user = line.user.map(str::to_owned);
    let (kind, detail) = match (obs, line.kind) {
        (Observation::AuthSucceeded { .. }, _) => {
            tracing::info!(source = %line.ip, user, "SSH login");
            ("ssh-login", format!("logged in by {}", line.method.unwrap_or("?")))
        }
        (Observation::UnknownUser { .. }, _) => ("ssh-invalid-user", "no such user".to_owned()),
        (Observation::Probe { evidence, .. }, _) => ("ssh-probe", evidence.to_owned()),
        (_, SshKind::TooManyAttempts) => ("ssh-auth-failed", "too many authentication attempts".to_owned()),
        (_, SshKind::PamFailed) => ("ssh-auth-failed", "keyboard-interactive/pam failed".to_owned()),
        _ => ("ssh-auth-failed", format!("{} failed", line.method.unwrap_or("authentication"))),
    };
    Some(EventRow { id: 0, at_ms: now as i64, kind: kind.into(), source: Some(line.ip.to_string()), user, detail })
}

#[derive(Default)]
struct Sources {
    files: Vec<Follower>,
    journal: Option<Journal>,
}

impl Sources {
    /// `bell` is rung by each line from the journal.
    fn open(s: &GuardSettings, bell: &Bell) -> Self {
        if !s.enabled {
            tracing::info!("SSH guard off (ssh.guard.enabled = false)");
            return Self::default();
        }
        let list = s.logs.clone().unwrap_or_else(auto_sources);
        let mut out = Self::default();
        for src in list {
            match src {
                LogSource::File(p) => out.files.push(Follower::new(p)),
                LogSource::Journald => match Journal::start(bell.clone()) {
                    Ok(j) => out.journal = Some(j),
                    Err(e) => {
                        tracing::warn!(error = %e, "SSH guard cannot start journalctl; the journal is not followed")
                    }
                },
            }
        }
        let files: Vec<_> = out.files.iter().map(|f| f.path.display().to_string()).collect();
        tracing::info!(?files, journal = out.journal.is_some(), "SSH guard following sshd's log");
        out
    }

    fn poll_files(&mut self, handle: &mut impl FnMut(&[u8])) -> bool {
        let mut got = false;
        for f in &mut self.files {
            got |= f.poll(handle);
        }
        got
    }

    fn drain_journal(&mut self, handle: &mut impl FnMut(&[u8])) -> bool {
        let Some(j) = &self.journal else { return false };
        let mut got = false;
        loop {
            match j.lines.try_recv() {
                Ok(l) => {
                    handle(&l);
                    got = true;
                }
                Err(TryRecvError::Empty) => return got,
                Err(TryRecvError::Disconnected) => {
                    tracing::warn!("journalctl ended; the SSH guard no longer follows the journal");
                    self.journal = None;
                    return got;
                }
            }
        }
    }
}

/// `auto`: the journal when journald runs (its socket exists), else the usual syslog file.
fn auto_sources() -> Vec<LogSource> {
    if Path::new("/run/systemd/journal/socket").exists() {
        vec![LogSource::Journald]
    } else {
        vec![LogSource::File("/var/log/auth.log".into())]
    }
}

/// A log file followed across rotation and truncation.
struct Follower {
    path: PathBuf,
    file: Option<File>,
    /// (device, inode) of `file`.
    id: (u64, u64),
    pos: u64,
    partial: Vec<u8>,
    /// Skipping the rest of an overlong line.
    skipping: bool,
    /// The file did not exist when the guard started: when it appears it is read from its start.
    from_start: bool,
}

impl Follower {
    fn new(path: PathBuf) -> Self {
        let mut f =
            Self { path, file: None, id: (0, 0), pos: 0, partial: Vec::new(), skipping: false, from_start: false };
        // Lines already there are history: start at the end.
        if !f.reopen(true) {
            tracing::warn!(path = %f.path.display(), "SSH log not found; waiting for it to appear");
            f.from_start = true;
        }
        f
    }

    fn reopen(&mut self, at_end: bool) -> bool {
        let Ok(file) = File::open(&self.path) else { return false };
        let Ok(meta) = file.metadata() else { return false };
        self.id = (meta.dev(), meta.ino());
        self.pos = if at_end { meta.len() } else { 0 };
        self.file = Some(file);
        self.partial.clear();
        self.skipping = false;
        true
    }

    /// Reads what was appended; follows a rotation or a truncation. True when something was read.
    fn poll(&mut self, handle: &mut impl FnMut(&[u8])) -> bool {
        if self.file.is_none() {
            let fresh = self.from_start;
            if !self.reopen(!fresh) {
                return false;
            }
        }
        let mut got = self.read_new(handle);
        match std::fs::metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) != self.id => {
                // Rotated: what the writer still appended to the old file is read first.
                got |= self.read_new(handle);
                self.flush_partial(handle);
                tracing::info!(path = %self.path.display(), "SSH log rotated; following the new file");
                if self.reopen(false) {
                    got |= self.read_new(handle);
                }
            }
            Ok(m) if m.len() < self.pos => {
                tracing::info!(path = %self.path.display(), "SSH log truncated; reading it from the start");
                self.pos = 0;
                self.partial.clear();
                got |= self.read_new(handle);
            }
            // Renamed away and not yet created again: keep reading the old file.
            _ => {}
        }
        got
    }

    fn read_new(&mut self, handle: &mut impl FnMut(&[u8])) -> bool {
        let Some(file) = &mut self.file else { return false };
        if file.seek(SeekFrom::Start(self.pos)).is_err() {
            return false;
        }
        let mut buf = [0u8; 8192];
        let mut total = 0;
        while total < READ_CHUNK {
            let n = match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            total += n;
            self.pos += n as u64;
            let mut rest = &buf[..n];
            while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
                if !self.skipping {
                    if self.partial.is_empty() {
                        handle(&rest[..nl]);
                    } else {
                        self.partial.extend_from_slice(&rest[..nl]);
                        handle(&self.partial);
                        self.partial.clear();
                    }
                }
                self.skipping = false;
                rest = &rest[nl + 1..];
            }
            if !self.skipping {
                if self.partial.len() + rest.len() > MAX_LINE {
                    self.partial.clear();
                    self.skipping = true;
                } else {
                    self.partial.extend_from_slice(rest);
                }
            }
        }
        total > 0
    }

    /// The last line of a rotated file may lack its newline.
    fn flush_partial(&mut self, handle: &mut impl FnMut(&[u8])) {
        if !self.partial.is_empty() && !self.skipping {
            handle(&self.partial);
        }
        self.partial.clear();
    }
}

/// `journalctl -f -o json` for sshd's units, from now on; its lines arrive on a bounded channel.
struct Journal {
    child: Child,
    lines: Receiver<Vec<u8>>,
}

impl Journal {
    fn start(bell: Bell) -> std::io::Result<Self> {
        let mut child = Command::new("journalctl")
            .args(["-f", "-o", "json", "-n", "0", "-u", "ssh", "-u", "sshd"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let out = child.stdout.take().ok_or_else(|| std::io::Error::other("journalctl has no stdout"))?;
        let (tx, rx) = sync_channel(4096);
        std::thread::Builder::new().name("pbxguard-journal".into()).spawn(move || read_journal(out, &tx, &bell))?;
        Ok(Self { child, lines: rx })
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_journal(out: impl Read, tx: &SyncSender<Vec<u8>>, bell: &Bell) {
    let mut r = BufReader::new(out);
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.by_ref().take(MAX_LINE as u64 * 4).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                } else {
                    // Overlong: skip to the end of that entry without keeping it.
                    if !skip_line(&mut r) {
                        return;
                    }
                    continue;
                }
                if tx.send(std::mem::take(&mut line)).is_err() {
                    return;
                }
                bell.ring();
            }
        }
    }
}

fn skip_line(r: &mut impl BufRead) -> bool {
    loop {
        let buf = match r.fill_buf() {
            Ok(b) if !b.is_empty() => b,
            _ => return false,
        };
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            r.consume(i + 1);
            return true;
        }
        let n = buf.len();
        r.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
    }

    fn poll(f: &mut Follower) -> Vec<String> {
        let mut out = Vec::new();
        f.poll(&mut |l: &[u8]| out.push(String::from_utf8_lossy(l).into_owned()));
        out
    }

    #[test]
    fn a_followed_file_loses_no_line_across_rotation_and_truncation() {
        let dir = std::env::temp_dir().join(format!("pbxguard-follow-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("auth.log");
        append(&log, "old 1\nold 2\n");
        let mut f = Follower::new(log.clone());
        assert!(poll(&mut f).is_empty(), "lines from before the start are history");
        append(&log, "a\nb");
        assert_eq!(poll(&mut f), ["a"], "a partial line waits for its end");
        append(&log, "c\n");
        assert_eq!(poll(&mut f), ["bc"]);
        // Rotation: renamed, one more line to the old file, then a new file.
        std::fs::rename(&log, dir.join("auth.log.1")).unwrap();
        append(&dir.join("auth.log.1"), "d\n");
        assert_eq!(poll(&mut f), ["d"], "the renamed file is still read before the new one exists");
        append(&dir.join("auth.log.1"), "e");
        append(&log, "f\n");
        assert_eq!(poll(&mut f), ["e", "f"], "the old file's last line, then the new file from its start");
        // Truncation (copytruncate), then new lines.
        std::fs::write(&log, "").unwrap();
        assert!(poll(&mut f).is_empty());
        append(&log, "g\n");
        assert_eq!(poll(&mut f), ["g"]);
        // An overlong line is skipped whole; memory stays bounded.
        append(&log, &"x".repeat(MAX_LINE * 3));
        assert!(poll(&mut f).is_empty());
        assert!(f.partial.capacity() <= 2 * MAX_LINE + 8192);
        append(&log, "tail of it\nh\n");
        assert_eq!(poll(&mut f), ["h"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
