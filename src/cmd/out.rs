//! What every command's output shares.

use crate::outln;
use anyhow::Result;

pub(super) fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
