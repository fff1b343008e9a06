//! `pbxguard cert`: the TLS certificate. The checks and the files are `pbxguard_app::certs`; ACME is
//! `crate::acme`, run here in this process (it answers the challenge itself). A running daemon
//! notices the new files and serves them.

use super::out::print_json;
use crate::cli::CertCommand;
use crate::outln;
use anyhow::{Context, Result};
use pbxguard_app::certs::{self, CertInfo};
use pbxguard_app::clock::{now_secs, utc};
use std::path::Path;

pub(super) fn cert(data: &Path, cmd: CertCommand) -> Result<()> {
    match cmd {
        CertCommand::Show { json } => {
            let shown = certs::show(data, now_secs())?;
            if json {
                return print_json(&shown);
            }
            outln!("certificate  {}", shown.files.cert.display());
            outln!("key          {}", shown.files.key.display());
            print_chain(&shown.chain)?;
            if let Some(p) = shown.pending {
                outln!(
                    "pending CSR  for {} (made {}); import the CA's certificate with `pbxguard cert import CHAIN.pem`",
                    p.names.join(", "),
                    utc(p.created * 1000)
                );
            }
            Ok(())
        }
        CertCommand::Import { chain, key, json } => {
            let chain_pem = read(&chain)?;
            let key_pem = key.as_deref().map(read).transpose()?;
            let done = certs::import(data, &chain_pem, key_pem.as_deref(), now_secs())?;
            if json {
                return print_json(&done);
            }
            outln!("installed {} (and its key {})", done.files.cert.display(), done.files.key.display());
            print_chain(&done.chain)?;
            for w in &done.warnings {
                outln!("warning      {w}");
            }
            outln!("a running daemon serves it within two seconds (SIP TLS and the GUI)");
            Ok(())
        }
        CertCommand::Csr { names, out } => {
            let p = certs::csr(data, &names)?;
            match out {
                Some(f) => {
                    std::fs::write(&f, &p.csr_pem).with_context(|| format!("writing {}", f.display()))?;
                    outln!(
                        "CSR for {} written to {}; its key stays in {}",
                        p.names.join(", "),
                        f.display(),
                        data.join("tls").display()
                    );
                }
                None => outln!("{}", p.csr_pem.trim_end()),
            }
            Ok(())
        }
        CertCommand::Acme { json } => {
            let acme = pbxguard_app::settings::acme(&pbxguard_app::open_existing(data)?)?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let done = rt.block_on(crate::acme::obtain(data, &acme))?;
            if json {
                return print_json(&done);
            }
            outln!("obtained from {} and installed in {}", acme.directory, done.files.cert.display());
            print_chain(&done.chain)?;
            outln!(
                "a running daemon serves it within two seconds, and renews it {} days before it expires",
                certs::RENEW_DAYS
            );
            Ok(())
        }
    }
}

fn read(path: &Path) -> Result<String> {
    // Bounded: a PEM chain is a few kilobytes; anything huge is a mistake (the wrong file).
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > 1 << 20 {
        anyhow::bail!("{} is {} bytes: not a PEM certificate or key", path.display(), meta.len());
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {} (expected PEM text)", path.display()))
}

fn print_chain(chain: &[CertInfo]) -> Result<()> {
    let now = now_secs();
    let Some(leaf) = chain.first() else { return Ok(()) };
    outln!("subject      {}", leaf.subject);
    outln!("names        {}", leaf.sans.join(", "));
    outln!("issuer       {}{}", leaf.issuer, if leaf.self_signed { " (self-signed)" } else { "" });
    outln!("serial       {}", leaf.serial);
    outln!(
        "valid        {} to {} ({} days left)",
        utc(leaf.not_before * 1000),
        utc(leaf.not_after * 1000),
        leaf.days_left(now)
    );
    outln!("key type     {}", leaf.key_type);
    outln!("sha256       {}", leaf.sha256);
    for (i, c) in chain.iter().enumerate().skip(1) {
        outln!("chain {i}      {} (until {})", c.subject, utc(c.not_after * 1000));
    }
    Ok(())
}
