//! The host, read only: the firewall's services and applies, sshd's effective configuration and the
//! SSH guard, and the security audit, each as its page shows it (the pages' own view functions).
//!
//! Changing them stays on the command line on purpose: a firewall apply needs the anti-lockout check
//! against the operator's own SSH session, and an sshd change is checked by sshd and confirmed from a
//! new SSH login; an HTTP request carries neither.

use super::common::{ApiErrorBody, ApiResult};
use crate::daemon::gui::access::Authed;
use crate::daemon::gui::pages::{audit, firewall, ssh};
use crate::daemon::gui::shared::Shared;
use axum::Json;
use axum::extract::State;
use pbxguard_app::audit::Report;
use pbxguard_store::{ApplyRow, FirewallServiceRow};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(show_firewall)).routes(routes!(show_ssh)).routes(routes!(show_audit))
}

#[derive(Serialize, ToSchema)]
struct ServiceOut {
    name: String,
    /// tcp or udp.
    proto: String,
    /// Comma-separated ports and ranges; null: what pbxguard or sshd listens on.
    ports: Option<String>,
    /// Space-separated CIDRs and ACL group names allowed in; empty: anyone.
    sources: String,
}

impl From<FirewallServiceRow> for ServiceOut {
    fn from(s: FirewallServiceRow) -> Self {
        Self { name: s.name, proto: s.proto, ports: s.ports, sources: s.sources }
    }
}

#[derive(Serialize, ToSchema)]
struct ApplyOut {
    id: i64,
    /// requested, applied (rolls back at `deadline_ms` unless confirmed), confirmed, rolled_back,
    /// failed or cancelled.
    state: &'static str,
    /// Why it failed, or what the rollback did.
    detail: Option<String>,
    /// 0: no rollback.
    rollback_ms: i64,
    requested_ms: i64,
    deadline_ms: Option<i64>,
    updated_ms: i64,
}

impl From<ApplyRow> for ApplyOut {
    fn from(a: ApplyRow) -> Self {
        Self {
            id: a.id,
            state: a.state.as_str(),
            detail: a.detail,
            rollback_ms: a.rollback_ms,
            requested_ms: a.requested_ms,
            deadline_ms: a.deadline_ms,
            updated_ms: a.updated_ms,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct FirewallOut {
    /// Whether table `inet pbxguard` is loaded in the kernel (null: unknown, see `loaded_unknown`).
    loaded: Option<bool>,
    /// Why `loaded` could not be told (nft missing, say).
    loaded_unknown: Option<String>,
    /// Kernel bans (setting firewall.enabled).
    enabled: bool,
    /// The wizard has saved these services; false: they are its defaults, open to anyone.
    saved: bool,
    services: Vec<ServiceOut>,
    /// The apply loaded and awaiting its confirm, or waiting for the daemon to load it.
    pending: Option<ApplyOut>,
    last: Option<ApplyOut>,
    /// The ruleset an apply would load (`nft -f` text); null: it cannot be built, see `ruleset_error`.
    ruleset: Option<String>,
    ruleset_error: Option<String>,
}

/// The host firewall: its services, the last apply and any pending one. Applying stays on the
/// command line (`pbxguard firewall wizard`): it checks the operator's own SSH session stays allowed.
#[utoipa::path(get, path = "/api/v1/firewall", tag = "host",
    responses((status = 200, body = FirewallOut), (status = 401, body = ApiErrorBody)))]
async fn show_firewall(State(gui): State<Shared>, _a: Authed) -> ApiResult<Json<FirewallOut>> {
    let v = firewall::view(&gui).await?;
    Ok(Json(FirewallOut {
        loaded: v.loaded.as_ref().ok().copied(),
        loaded_unknown: v.loaded.err(),
        enabled: v.enabled,
        saved: v.saved,
        services: v.services.into_iter().map(Into::into).collect(),
        pending: v.pending.map(Into::into),
        last: v.last.map(Into::into),
        ruleset: v.ruleset.as_ref().ok().cloned(),
        ruleset_error: v.ruleset.err(),
    }))
}

#[derive(Serialize, ToSchema)]
struct SshdOut {
    /// Ports sshd listens on.
    ports: Vec<u16>,
    /// A port change awaiting `pbxguard ssh confirm`: this old port is still open.
    pending_old_port: Option<u16>,
    /// PermitRootLogin: yes, prohibit-password, forced-commands-only or no.
    root_login: String,
    /// Password logins allowed (false: keys only).
    password_auth: bool,
    /// Networks that may log in (AllowUsers USER@CIDR); null: everyone.
    allowed: Option<Vec<String>>,
    /// AllowUsers host patterns the firewall cannot follow.
    unresolved_allow: Vec<String>,
    /// Where a Port is set outside pbxguard's drop-in (FILE:LINE).
    ports_set_elsewhere: Vec<String>,
}

#[derive(Serialize, ToSchema)]
struct SshOut {
    /// sshd's configuration file (setting ssh.config).
    config: String,
    /// What it says (global settings; Match blocks are not followed); null: unreadable, see `unreadable`.
    sshd: Option<SshdOut>,
    /// Why sshd's configuration could not be read (OpenSSH not installed, say).
    unreadable: Option<String>,
    /// The SSH guard follows sshd's logs (ssh.guard.enabled).
    guard_enabled: bool,
    /// The logs it follows (ssh.guard.logs): paths and "journald"; null: auto.
    guard_logs: Option<Vec<String>>,
    /// Sources banned now for attacking SSH.
    banned: usize,
}

/// sshd's effective ports, root login and password logins, and the SSH guard, as the page shows them.
/// Changing sshd stays on the command line (`pbxguard ssh set`), checked by sshd and confirmed.
#[utoipa::path(get, path = "/api/v1/ssh", tag = "host",
    responses((status = 200, body = SshOut), (status = 401, body = ApiErrorBody)))]
async fn show_ssh(State(gui): State<Shared>, _a: Authed) -> ApiResult<Json<SshOut>> {
    let v = ssh::view(&gui).await?;
    let (sshd, unreadable) = match v.facts {
        Ok(f) => (
            Some(SshdOut {
                ports: f.ports,
                pending_old_port: f.pending_old_port,
                root_login: f.root_login,
                password_auth: f.password_auth,
                allowed: f.allowed.map(|a| a.iter().map(ToString::to_string).collect()),
                unresolved_allow: f.unresolved_allow,
                ports_set_elsewhere: f.ports_set_elsewhere,
            }),
            None,
        ),
        Err(why) => (None, Some(why)),
    };
    let logs = v.guard.logs.map(|l| l.iter().map(ToString::to_string).collect());
    Ok(Json(SshOut {
        config: v.paths.config.display().to_string(),
        sshd,
        unreadable,
        guard_enabled: v.guard.enabled,
        guard_logs: logs,
        banned: v.bans.len(),
    }))
}

#[derive(Serialize, ToSchema)]
struct CheckOut {
    /// Stable identifier of the check (admin-password, ssh-root-login...).
    check: &'static str,
    /// failed, passed or skipped (could not run; not counted against the score).
    status: &'static str,
    /// For a failed check: critical, high, medium or low.
    severity: Option<&'static str>,
    /// For a failed check: what is wrong.
    title: Option<String>,
    /// For a failed check: what was found.
    evidence: Option<String>,
    /// For a failed check: the command(s) that fix it.
    fix: Option<String>,
    /// `pbxguard audit --fix` fixes it.
    auto_fix: bool,
    /// For a skipped check: why it could not run.
    why: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct AuditOut {
    /// 100 minus the weight of every failed check, at least 0.
    score: u32,
    /// A failed check is critical: fix it first.
    critical: bool,
    /// Failed checks first (most severe first), then passed, then skipped.
    checks: Vec<CheckOut>,
}

impl From<Report> for AuditOut {
    fn from(r: Report) -> Self {
        let mut findings = r.findings;
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let failed = findings.into_iter().map(|f| CheckOut {
            check: f.check,
            status: "failed",
            severity: Some(f.severity.as_str()),
            title: Some(f.title),
            evidence: Some(f.evidence),
            fix: Some(f.fix),
            auto_fix: f.auto_fix,
            why: None,
        });
        let passed = r.passed.into_iter().map(|check| CheckOut {
            check,
            status: "passed",
            severity: None,
            title: None,
            evidence: None,
            fix: None,
            auto_fix: false,
            why: None,
        });
        let skipped = r.skipped.into_iter().map(|s| CheckOut {
            check: s.check,
            status: "skipped",
            severity: None,
            title: None,
            evidence: None,
            fix: None,
            auto_fix: false,
            why: Some(s.why),
        });
        Self { score: r.score, critical: r.critical, checks: failed.chain(passed).chain(skipped).collect() }
    }
}

/// The security audit, as `pbxguard audit` and the page report it: the score and every check with its
/// status and the command that fixes it. Fixing stays on the command line (`pbxguard audit --fix`).
#[utoipa::path(get, path = "/api/v1/audit", tag = "host",
    responses((status = 200, body = AuditOut), (status = 401, body = ApiErrorBody)))]
async fn show_audit(State(gui): State<Shared>, _a: Authed) -> ApiResult<Json<AuditOut>> {
    Ok(Json(audit::report(&gui).await?.into()))
}
