//! The console's own settings (theme, history retention), kept in `settings.json`.

use super::dto::*;
use super::{CmdResult, Console, lock};

impl Console {
    pub async fn get_settings(&self) -> CmdResult<Settings> {
        let p = &lock(&self.inner.state).persisted;
        Ok(Settings {
            theme: p.theme,
            retention_hours: p.retention_hours,
        })
    }

    /// Saves the settings; a shorter retention prunes older history at once.
    pub async fn update_settings(&self, args: Settings) -> CmdResult<Settings> {
        if !args.retention_hours.is_finite() || !(1.0..=24.0 * 90.0).contains(&args.retention_hours)
        {
            return Err(CommandError::invalid(
                "retention must be between 1 hour and 90 days",
            ));
        }
        {
            let mut st = lock(&self.inner.state);
            st.persisted.theme = args.theme;
            st.persisted.retention_hours = args.retention_hours;
        }
        self.save_settings()?;
        let before = self.now_ms() - (args.retention_hours * 3_600_000.0) as i64;
        self.inner.host.store.prune(before).await?;
        self.get_settings().await
    }
}
