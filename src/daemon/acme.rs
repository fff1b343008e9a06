//! Keeping the served certificate current: the files are watched (an import or `pbxguard cert acme`
//! in another process is served within two seconds, no SIGHUP needed), and with ACME configured the
//! certificate is obtained again when it is not for the configured names or nears its end: checked at
//! start, hourly, and as soon as an acme.* setting changes. A failure is logged and
//! tried again at the next of those.

use super::changes::{Hub, Subscription};
use super::tls::ServerCert;
use super::watch::FileWatch;
use pbxguard_app::certs::{self, AcmeSettings};
use pbxguard_store::Topic;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// While certificate files are changing, they are looked at this often until they hold still.
const SETTLE: Duration = Duration::from_secs(1);
const CHECK: Duration = Duration::from_secs(3600);
/// A look at the files without an event: a safety net (a SIGHUP naming other files, a filesystem that
/// does not report changes), and the retry interval when the settings cannot be read.
const SAFETY_LOOK: Duration = Duration::from_secs(10);

/// `hub`: the acme.* settings wake the thread.
pub(crate) fn start(
    hub: &Hub,
    rt: &tokio::runtime::Runtime,
    data: PathBuf,
    cert: Arc<ServerCert>,
) -> anyhow::Result<()> {
    let (mut watch, settings) = FileWatch::with_topics(hub, &[Topic::Settings]);
    let rt = rt.handle().clone();
    // A thread of its own: it holds a database connection and sleeps until a file or a setting changes.
    std::thread::Builder::new()
        .name("pbxguard-acme".into())
        .spawn(move || renewals(&data, &cert, &rt, &mut watch, &settings))?;
    Ok(())
}

fn renewals(
    data: &Path,
    cert: &ServerCert,
    rt: &tokio::runtime::Handle,
    watch: &mut FileWatch,
    settings: &Subscription,
) {
    let store = match pbxguard_app::open_existing(data) {
        Ok(s) => s,
        Err(e) => return tracing::error!(error = %e, "no ACME renewals: the database cannot be opened"),
    };
    let mut last: Option<AcmeSettings> = None;
    let mut checked: Option<Instant> = None;
    loop {
        let hourly = checked.is_none_or(|t| t.elapsed() >= CHECK);
        if last.is_none() || !settings.take().is_empty() || hourly {
            match pbxguard_app::settings::acme(&store) {
                Ok(acme) => {
                    if hourly || last.as_ref() != Some(&acme) {
                        checked = Some(Instant::now());
                        renew_if_due(data, cert, &acme, rt);
                    }
                    last = Some(acme);
                }
                Err(e) => {
                    // Not again at once: read again at the next look (an operator's fix is a settings
                    // change, which rings).
                    checked = Some(Instant::now());
                    tracing::error!(error = %e, "ACME settings unreadable; no renewal check")
                }
            }
        }
        match cert.poll_files() {
            Some(Ok(())) => tracing::info!("TLS certificate files changed; new connections use the new certificate"),
            Some(Err(e)) => tracing::error!(
                error = format!("{e:#}"),
                "TLS certificate files changed but do not load; the one in force is kept"
            ),
            None => {}
        }
        // The files in use now (a reload may have named others); watching a path again is harmless.
        for f in cert.files() {
            if let Err(e) = watch.watch(&f) {
                tracing::debug!(path = %f.display(), error = %e, "cannot watch a certificate file");
            }
        }
        let due = CHECK.saturating_sub(checked.map_or(CHECK, |t| t.elapsed()));
        let wait = if cert.settling() { SETTLE } else { due.min(SAFETY_LOOK) };
        watch.wait(wait.max(Duration::from_millis(10)));
    }
}

fn renew_if_due(data: &Path, cert: &ServerCert, acme: &AcmeSettings, rt: &tokio::runtime::Handle) {
    if !acme.configured() {
        return;
    }
    let served = certs::describe(&cert.chain());
    let Some(reason) = served.ok().and_then(|c| certs::renewal_due(&c[0], acme, pbxguard_app::clock::now_secs()))
    else {
        return;
    };
    tracing::info!(%reason, domains = acme.domains.join(","), "obtaining a certificate by ACME");
    match rt.block_on(crate::acme::obtain(data, acme)) {
        Ok(done) => {
            tracing::info!(
                serial = done.chain[0].serial,
                not_after = done.chain[0].not_after,
                "ACME certificate installed"
            );
            if let Err(e) = cert.reload_files() {
                tracing::error!(
                    error = format!("{e:#}"),
                    "the new certificate does not load; the one in force is kept"
                );
            }
        }
        Err(e) => tracing::error!(error = %e, "ACME failed; tried again hourly or when an acme.* setting changes"),
    }
}
