//! SSH: what sshd's configuration says (ports, root login, password logins, who may log in), the
//! SSH guard's settings, and the sources banned for attacking SSH. Read-only this round: changing
//! sshd stays on the command line (`pbxguard ssh set`), which checks the new configuration with sshd
//! itself and keeps the old port open until confirmed.

use super::super::access::Authed;
use super::super::layout;
use super::super::shared::Shared;
use super::ui::broken;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use pbxguard_app::clock::utc;
use pbxguard_app::ssh::{GuardSettings, SshFacts, SshPaths};
use pbxguard_store::BanRow;

/// SSH bans listed at most; the bans page has them all.
const SHOWN_BANS: usize = 200;

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/ssh", get(show))
}

/// What the page and `GET /api/v1/ssh` show.
pub(crate) struct View {
    pub(crate) paths: SshPaths,
    /// sshd's facts, or why its configuration could not be read (sshd absent, say).
    pub(crate) facts: Result<SshFacts, String>,
    pub(crate) guard: GuardSettings,
    pub(crate) bans: Vec<BanRow>,
}

/// The shield writes `ssh: ...` as the evidence of every ban its SSH detector makes.
fn is_ssh_ban(b: &BanRow) -> bool {
    b.evidence.starts_with("ssh:")
}

pub(crate) async fn view(gui: &Shared) -> pbxguard_app::Result<View> {
    // Reading sshd's files (and their Includes) blocks: on the database's blocking threads with the rest.
    gui.db
        .run(|s| {
            let paths = pbxguard_app::settings::ssh_paths(s)?;
            Ok(View {
                facts: pbxguard_app::ssh::effective(&paths).map_err(|e| e.to_string()),
                paths,
                guard: pbxguard_app::settings::ssh_guard(s)?,
                bans: pbxguard_app::security::bans(s)?.into_iter().filter(is_ssh_ban).collect(),
            })
        })
        .await
}

fn facts_card(v: &View) -> Markup {
    html! {
        div.card #ssh-facts {
            h2 { "sshd" }
            p.hint { "As " code { (v.paths.config.display()) } " and its Includes say (global settings; Match blocks are not followed)." }
            @match &v.facts {
                Err(why) => {
                    p.warn-text #ssh-unreadable { "sshd's configuration cannot be read: " (why) }
                    p.hint { "Is OpenSSH installed? Setting ssh.config names its configuration file." }
                }
                Ok(f) => {
                    dl {
                        dt { "Ports" }
                        dd #ssh-ports {
                            (f.ports.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
                            @if let Some(old) = f.pending_old_port { " (port " (old) " kept open until " code { "pbxguard ssh confirm" } ")" }
                        }
                        dt { "Root login" }
                        dd #ssh-root { @if f.root_login == "yes" { span.warn-text { "yes" } } @else { (f.root_login) } }
                        dt { "Password logins" }
                        dd #ssh-password { @if f.password_auth { span.warn-text { "yes" } } @else { "no (keys only)" } }
                        dt { "Allowed from" }
                        dd #ssh-allowed {
                            @match &f.allowed {
                                None => span.warn-text { "everyone" },
                                Some(a) => (a.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
                            }
                        }
                    }
                    @if !f.unresolved_allow.is_empty() {
                        p.hint { "AllowUsers patterns the firewall cannot follow (it lets everyone reach SSH): " (f.unresolved_allow.join(", ")) }
                    }
                    @if !f.ports_set_elsewhere.is_empty() {
                        p.hint { "Ports set outside pbxguard's drop-in: " (f.ports_set_elsewhere.join(", ")) }
                    }
                }
            }
            p.hint #ssh-cli-only {
                "Changes to sshd stay on the command line this round: " code { "pbxguard ssh set --port 2222 --root-login no --password-auth no" }
                " (checked by sshd before it is reloaded; a new port is kept beside the old one until " code { "pbxguard ssh confirm" } ")."
            }
        }
    }
}

fn guard_card(g: &GuardSettings) -> Markup {
    let logs = match &g.logs {
        None => "auto (journald, else /var/log/auth.log)".to_owned(),
        Some(l) => l.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
    };
    html! {
        div.card #ssh-guard {
            h2 { "SSH guard" }
            p { "Watching sshd's logs: " @if g.enabled { span.ok { "on" } } @else { span.warn-text { "off" } } }
            p { "Logs: " (logs) }
            p.hint { "Settings ssh.guard.enabled and ssh.guard.logs, on the " a href="/settings" { "settings page" } "." }
        }
    }
}

fn page(who: &Authed, v: &View) -> Markup {
    layout::page(
        "SSH",
        Some(who),
        html! {
            h1 { "SSH" }
            div.cards { (facts_card(v)) (guard_card(&v.guard)) }
            h2 { "Banned for attacking SSH" }
            @if v.bans.is_empty() {
                p #ssh-no-bans { "No source is banned for attacking SSH." }
            } @else {
                div.table-wrap {
                    table #ssh-bans {
                        thead { tr { th { "Source" } th { "Why" } th { "Since" } th { "Until" } } }
                        tbody {
                            @for b in v.bans.iter().take(SHOWN_BANS) {
                                tr {
                                    td { (b.target) }
                                    td { (b.evidence) }
                                    td { (utc(b.created_ms)) }
                                    td { @match b.expires_ms { Some(t) => (utc(t)), None => span.hint { "until removed" } } }
                                }
                            }
                        }
                    }
                }
                @if v.bans.len() > SHOWN_BANS {
                    p.hint { (v.bans.len()) " in all; the " a href="/bans" { "bans page" } " lists every one." }
                }
            }
        },
    )
}

async fn show(State(gui): State<Shared>, who: Authed) -> Response {
    match view(&gui).await {
        Ok(v) => page(&who, &v).into_response(),
        Err(e) => broken("SSH", &who, &e),
    }
}
