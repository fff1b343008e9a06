//! The pages: one module per area, each a `Router` merged here.

mod bans;
mod blacklists;
mod calls;
mod dashboard;
mod events;
mod extensions;
mod settings;
mod tokens;
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
}
