//! `pbxguard token`: API tokens for the REST API and /metrics.

use super::out::print_json;
use crate::cli::TokenCommand;
use crate::outln;
use anyhow::Result;
use pbxguard_app::clock::{now_secs, span, utc};
use pbxguard_app::tokens::{self, TokenScope};
use pbxguard_store::Store;

pub(super) fn token(store: &Store, cmd: TokenCommand) -> Result<()> {
    match cmd {
        TokenCommand::Add { name, scope } => {
            let t = tokens::add(store, &name, TokenScope::parse(&scope)?)?;
            outln!("API token {name} ({scope}), shown once; send it as 'Authorization: Bearer TOKEN':");
            outln!("{}", t.token);
        }
        TokenCommand::List { json } => {
            let rows = tokens::list(store)?;
            if json {
                return print_json(&rows);
            }
            let now = now_secs();
            outln!("{:<24} {:<6} {:<14} {:<24} LAST USED", "NAME", "SCOPE", "PREFIX", "CREATED");
            for t in rows {
                let used = t.last_used.map_or("never".to_owned(), |s| format!("{} ago", span(now - s)));
                outln!(
                    "{:<24} {:<6} {:<14} {:<24} {used}",
                    t.name,
                    t.scope.as_str(),
                    t.prefix,
                    utc(t.created_at * 1000)
                );
            }
        }
        TokenCommand::Del { name } => {
            tokens::delete(store, &name)?;
            outln!("API token {name} revoked");
        }
    }
    Ok(())
}
