//! Request ids: the id of the request a task serves, held in a task-local so error bodies
//! and work spawned for the request (a job, an eval case) carry it without threading it
//! through. `routes::request_id` takes it from `X-Request-Id` or generates it.

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request this task is serving, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// A client-supplied id is kept only if it is 1–128 characters of `[A-Za-z0-9._:-]`;
/// anything else is replaced, so ids are always safe to log and to put in headers.
pub fn accept(candidate: Option<&str>) -> String {
    match candidate {
        Some(s)
            if !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b)) =>
        {
            s.to_string()
        }
        _ => uuid::Uuid::now_v7().to_string(),
    }
}

/// Runs a future with `id` as the current request id: the request-id middleware around
/// each request, and work done for a request elsewhere (a job, an eval case).
pub fn scope<F: std::future::Future>(
    id: String,
    fut: F,
) -> tokio::task::futures::TaskLocalFuture<String, F> {
    REQUEST_ID.scope(id, fut)
}

#[cfg(test)]
mod tests {
    use super::accept;

    #[test]
    fn keeps_valid_ids_and_replaces_others() {
        assert_eq!(accept(Some("abc-123_x.y:z")), "abc-123_x.y:z");
        for bad in ["", "has space", "new\nline", &"x".repeat(129), "ünï"] {
            let got = accept(Some(bad));
            assert_ne!(got, bad);
            assert!(uuid::Uuid::parse_str(&got).is_ok());
        }
        assert!(uuid::Uuid::parse_str(&accept(None)).is_ok());
    }
}
