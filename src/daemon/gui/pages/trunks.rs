//! Trunks: the carriers outbound calls leave through and inbound calls come from (recognised by the
//! address the host resolves to). List with the registration state the running daemon knows, add
//! (every option of `pbxguard trunk add`; the secret is stored only as HA1 and never shown), delete.

use super::super::access::{Authed, Writer};
use super::super::layout;
use super::super::shared::Shared;
use super::ui::{broken, given, refused};
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use pbxguard_app::calls::{self, NewTrunk, TrunkTransport};
use pbxguard_app::invalid;
use pbxguard_store::TrunkRow;
use std::collections::HashMap;

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/trunks", get(list).post(add)).route("/trunks/del", post(del))
}

/// The add form as posted. The secret is never sent back: a refused form comes back without it.
#[derive(serde::Deserialize, Default)]
struct TrunkForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    transport: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    realm: String,
    #[serde(default)]
    register: String,
    #[serde(default)]
    tls_ca: String,
    #[serde(default)]
    allow_refer: Option<String>,
}

impl TrunkForm {
    fn to_new(&self) -> pbxguard_app::Result<NewTrunk> {
        let port = match given(&self.port) {
            None => 5060,
            Some(p) => {
                p.parse::<u16>().map_err(|_| invalid!("port {p:?}: give a number from 1 to 65535 (5060 is usual)"))?
            }
        };
        let transport = match self.transport.as_str() {
            "" | "udp" => TrunkTransport::Udp,
            "tcp" => TrunkTransport::Tcp,
            "tls" => TrunkTransport::Tls,
            t => return Err(invalid!("transport {t:?}: choose udp, tcp or tls")),
        };
        let register = given(&self.register)
            .map(|r| {
                r.parse::<u32>().map_err(|_| {
                    invalid!(
                        "register {r:?}: give the registration length in seconds (600 is usual), or leave it empty"
                    )
                })
            })
            .transpose()?;
        // Secrets are taken as typed: spaces may be part of one.
        let secret = (!self.secret.is_empty()).then(|| self.secret.clone());
        Ok(NewTrunk {
            name: self.name.trim().to_owned(),
            host: self.host.trim().to_owned(),
            port,
            transport,
            username: given(&self.username).map(str::to_owned),
            secret,
            realm: given(&self.realm).map(str::to_owned),
            register,
            tls_ca: given(&self.tls_ca).map(str::to_owned),
            allow_refer: self.allow_refer.is_some(),
        })
    }
}

fn registration(t: &TrunkRow, live: &HashMap<String, bool>) -> Markup {
    html! {
        @match (t.register_expires, live.get(&t.name)) {
            (None, _) => span.hint { "does not register" },
            (Some(_), Some(true)) => span.ok { "registered" },
            (Some(_), Some(false)) => span.error-text { "not registered (see Events)" },
            (Some(e), None) => span.hint { "every " (e) " s; not started yet" },
        }
    }
}

fn body(who: &Authed, rows: &[TrunkRow], live: &HashMap<String, bool>, f: &TrunkForm, error: Option<&str>) -> Markup {
    let transport = if f.transport.is_empty() { "udp" } else { f.transport.as_str() };
    html! {
        h1 { "Trunks" }
        p.hint { "Calls from a trunk are recognised by the address its host resolves to, never by headers; trunk addresses are trusted." }
        @if let Some(e) = error { (layout::error_box(e)) }
        div.table-wrap { table #trunk-list {
            thead { tr { th { "Name" } th { "Host" } th { "Port" } th { "Transport" } th { "Credentials" } th { "Registration" } th { "Transfers" } th {} } }
            tbody { @for t in rows { tr data-trunk=(t.name) {
                td { strong { (t.name) } }
                td { (t.host) }
                td { (t.port) }
                td { (t.transport) @if t.tls_ca.is_some() { " (own CA)" } }
                td { @match (&t.username, &t.realm) {
                    (Some(u), Some(r)) => { (u) "@" (r) },
                    _ => span.hint { "none" },
                } }
                td { (registration(t, live)) }
                td { @if t.allow_refer { "allowed" } @else { span.hint { "refused" } } }
                td { form method="post" action="/trunks/del" {
                    (layout::csrf_field(who))
                    input type="hidden" name="name" value=(t.name);
                    button.danger type="submit" data-confirm={"Delete trunk " (t.name) "?"} { "Delete" }
                } }
            } } }
        } }
        @if rows.is_empty() { p.hint { "No trunk yet: only calls between extensions are possible." } }
        h2 #add { "Add a trunk" }
        form.card #trunk-add method="post" action="/trunks" {
            (layout::csrf_field(who))
            div.inline {
                label for="name" { "Name" input #name name="name" required maxlength="64" value=(f.name); }
                label for="host" { "Host name or address" input #host name="host" required maxlength="253" value=(f.host) placeholder="sip.carrier.example"; }
                label for="port" { "Port" input #port name="port" inputmode="numeric" maxlength="5" value=(f.port) placeholder="5060"; }
                label for="transport" { "Transport"
                    select #transport name="transport" {
                        @for t in ["udp", "tcp", "tls"] { option value=(t) selected[transport == t] { (t.to_uppercase()) } }
                    }
                }
            }
            h3 { "Credentials (if the trunk challenges our calls)" }
            div.inline {
                label for="username" { "User name" input #username name="username" maxlength="128" autocomplete="off" value=(f.username); }
                label for="trunk-secret" { "Secret" input #trunk-secret name="secret" type="password" maxlength="256" autocomplete="new-password"; }
                label for="realm" { "Realm" input #realm name="realm" maxlength="128" autocomplete="off" value=(f.realm); }
                label for="register" { "Register every (seconds)" input #register name="register" inputmode="numeric" maxlength="6" value=(f.register) placeholder="empty: do not register"; }
            }
            p.hint { "The secret is stored only as digest hashes for this realm and is never shown again. Registering (60 to 86400 s; 600 is usual) makes the trunk send inbound calls here; it needs the credentials." }
            label for="tls_ca" { "With TLS: PEM certificates the trunk's certificate must chain to (empty: the public roots)" }
            textarea #tls_ca name="tls_ca" rows="4" cols="64" placeholder="-----BEGIN CERTIFICATE-----" { (f.tls_ca) }
            div.inline {
                label for="allow_refer" { "Allow transfers to it (REFER), each checked like a new call" input #allow_refer name="allow_refer" type="checkbox" value="1" checked[f.allow_refer.is_some()]; }
                button #trunk-add-submit type="submit" { "Add" }
            }
        }
    }
}

async fn render(gui: &Shared, who: &Authed, f: &TrunkForm, error: Option<&pbxguard_app::Error>) -> Response {
    match gui.db.run(|s| calls::trunks(s)).await {
        Ok(rows) => {
            // The live state: only a running daemon knows whether a registration succeeded.
            let live: HashMap<String, bool> = gui.state.sip().trunk_registrations().into_iter().collect();
            let page = layout::page(
                "Trunks",
                Some(who),
                body(who, &rows, &live, f, error.map(ToString::to_string).as_deref()),
            );
            match error {
                Some(e) => refused(e, page),
                None => page.into_response(),
            }
        }
        Err(e) => broken("Trunks", who, &e),
    }
}

async fn list(State(gui): State<Shared>, who: Authed) -> Response {
    render(&gui, &who, &TrunkForm::default(), None).await
}

async fn add(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<TrunkForm>) -> Response {
    let new = match f.to_new() {
        Ok(n) => n,
        Err(e) => return render(&gui, &who, &f, Some(&e)).await,
    };
    let name = new.name.clone();
    // Resolving the host may wait for DNS: it runs on the blocking thread with the store call.
    match gui.db.run(move |s| calls::add_trunk(s, new, &crate::resolve::System)).await {
        Ok(()) => {
            tracing::info!(admin = %who.who, trunk = name, "trunk added in the GUI");
            Redirect::to("/trunks").into_response()
        }
        Err(e) => render(&gui, &who, &f, Some(&e)).await,
    }
}

#[derive(serde::Deserialize)]
struct DelForm {
    #[serde(default)]
    name: String,
}

async fn del(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<DelForm>) -> Response {
    let name = f.name.clone();
    match gui.db.run(move |s| calls::delete_trunk(s, &name)).await {
        Ok(()) => {
            tracing::info!(admin = %who.who, trunk = f.name, "trunk deleted in the GUI");
            Redirect::to("/trunks").into_response()
        }
        Err(e) => render(&gui, &who, &TrunkForm::default(), Some(&e)).await,
    }
}
