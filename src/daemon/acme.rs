//! Keeping the served certificate current: the files are watched (an import or `pbxguard cert acme`
//! in another process is served within two seconds, no SIGHUP needed), and with ACME configured the
//! certificate is obtained again when it is not for the configured names or nears its end: checked at
//! start, hourly, and within ten seconds of a change to the acme.* settings. A failure is logged and
//! tried again at the next of those.

use super::tls::ServerCert;
use pbxguard_app::certs::{self, AcmeSettings};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WATCH: Duration = Duration::from_secs(1);
const SETTINGS: Duration = Duration::from_secs(10);
const CHECK: Duration = Duration::from_secs(3600);

pub(crate) fn start(rt: &tokio::runtime::Runtime, data: PathBuf, cert: Arc<ServerCert>) -> anyhow::Result<()> {
    let watched = cert.clone();
    rt.spawn(async move {
        let mut tick = tokio::time::interval(WATCH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match watched.poll_files() {
                Some(Ok(())) => {
                    tracing::info!("TLS certificate files changed; new connections use the new certificate")
                }
                Some(Err(e)) => {
                    tracing::error!(
                        error = format!("{e:#}"),
                        "TLS certificate files changed but do not load; the one in force is kept"
                    )
                }
                None => {}
            }
        }
    });
    let rt = rt.handle().clone();
    // A thread of its own: it holds a database connection and sleeps most of the time.
    std::thread::Builder::new().name("pbxguard-acme".into()).spawn(move || renewals(&data, &cert, &rt))?;
    Ok(())
}

fn renewals(data: &Path, cert: &ServerCert, rt: &tokio::runtime::Handle) {
    let store = match pbxguard_app::open_existing(data) {
        Ok(s) => s,
        Err(e) => return tracing::error!(error = %e, "no ACME renewals: the database cannot be opened"),
    };
    let mut last: Option<AcmeSettings> = None;
    let mut checked: Option<Instant> = None;
    loop {
        match pbxguard_app::settings::acme(&store) {
            Ok(acme) => {
                let changed = last.as_ref() != Some(&acme);
                if changed || checked.is_none_or(|t| t.elapsed() >= CHECK) {
                    checked = Some(Instant::now());
                    renew_if_due(data, cert, &acme, rt);
                }
                last = Some(acme);
            }
            Err(e) => tracing::error!(error = %e, "ACME settings unreadable; no renewal check"),
        }
        std::thread::sleep(SETTINGS);
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
