//! The pages: one module per area, each a `Router` merged here.

mod acls;
mod admins;
pub(super) mod audit;
mod bans;
mod blacklists;
mod calls;
mod cos;
mod dashboard;
mod dids;
mod events;
mod extensions;
pub(super) mod firewall;
mod routes;
mod settings;
pub(super) mod ssh;
mod tokens;
mod trunks;
mod trusted;
mod ui;
mod voicemail;

use super::shared::Shared;
use axum::Router;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .merge(settings::routes())
        .merge(dashboard::routes())
        .merge(bans::routes())
        .merge(trusted::routes())
        .merge(blacklists::routes())
        .merge(events::routes())
        .merge(calls::routes())
        .merge(tokens::routes())
        .merge(voicemail::routes())
        .merge(extensions::routes())
        .merge(admins::routes())
        .merge(firewall::routes())
        .merge(ssh::routes())
        .merge(audit::routes())
        .merge(acls::routes())
        .merge(trunks::routes())
        .merge(routes::routes())
        .merge(dids::routes())
        .merge(cos::routes())
}
