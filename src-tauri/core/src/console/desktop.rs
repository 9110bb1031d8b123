//! Desktop integration: notifications through the event sink.

use super::dto::*;
use super::{CmdResult, Console};

impl Console {
    /// Shows a desktop notification through the sink.
    pub async fn notify(&self, args: NotifyArgs) -> CmdResult<()> {
        let title = args.title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(CommandError::invalid(
                "a notification needs a title of 1-200 characters",
            ));
        }
        if args.body.chars().count() > 2000 {
            return Err(CommandError::invalid(
                "a notification body is at most 2000 characters",
            ));
        }
        self.inner.sink.notify(title, &args.body);
        Ok(())
    }
}
