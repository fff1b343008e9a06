use crate::{Result, Store};
use rusqlite::{OptionalExtension, params};

/// Run-time settings as text (their meaning and validation live in the application layer).
pub trait SettingsRepo {
    fn setting(&self, key: &str) -> Result<Option<String>>;

    fn set_setting(&self, key: &str, value: &str) -> Result<()>;

    /// Every stored setting (keys never set keep their defaults and are not listed here).
    fn settings(&self) -> Result<Vec<(String, String)>>;
}

impl SettingsRepo for Store {
    fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self.conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO settings(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    fn settings(&self) -> Result<Vec<(String, String)>> {
        let mut st = self.conn.prepare("SELECT key, value FROM settings ORDER BY key")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
