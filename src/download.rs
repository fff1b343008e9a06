//! Fetching what an operator points at (a blacklist as a file or an http(s) URL), with a size bound.
//! The application layer parses and stores the text; the network stays out of it.

use anyhow::{Context, Result, anyhow, bail};
use pbxguard_app::blacklist::{MAX_LIST_BYTES, is_url};
use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(120))).build().into()
}

pub(crate) fn fetch(source: &str) -> Result<String> {
    if is_url(source) {
        let mut resp = agent().get(source).call().map_err(|e| anyhow!("downloading {source}: {e}"))?;
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_LIST_BYTES)
            .read_to_string()
            .map_err(|e| anyhow!("reading {source}: {e}"))?;
        Ok(text)
    } else {
        let f = std::fs::File::open(source).with_context(|| format!("opening {source}"))?;
        let mut text = String::new();
        f.take(MAX_LIST_BYTES + 1)
            .read_to_string(&mut text)
            .with_context(|| format!("reading {source} (expected a text file)"))?;
        if text.len() as u64 > MAX_LIST_BYTES {
            bail!("{source} is larger than {} MB", MAX_LIST_BYTES >> 20);
        }
        Ok(text)
    }
}

/// A progress bar on a terminal's stderr (nothing when stderr is a file or a pipe).
pub(crate) fn progress(done: usize, total: usize) {
    if std::io::stderr().is_terminal() {
        let pct = done * 100 / total.max(1);
        let bar = "#".repeat(pct / 4) + &".".repeat(25 - pct / 4);
        eprint!("\r[{bar}] {pct:>3}% {done}/{total} entries");
        let _ = std::io::stderr().flush();
    }
}

pub(crate) fn progress_done() {
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
}
