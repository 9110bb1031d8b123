//! The Traces view: the active service's workflows, a filtered page of traces, one trace
//! with its spans.

use super::dto::*;
use super::{CmdResult, Console, map};
use crate::agent::TraceQuery as WireTraceQuery;

impl Console {
    pub async fn list_workflows(&self) -> CmdResult<Vec<String>> {
        let (_, client) = self.active().await?;
        Ok(client
            .workflows()
            .await?
            .into_iter()
            .map(|w| w.name)
            .collect())
    }

    pub async fn list_traces(&self, args: TraceQuery) -> CmdResult<TracePage> {
        if !(1..=500).contains(&args.limit) {
            return Err(CommandError::invalid("limit must be 1-500"));
        }
        let nonblank =
            |s: Option<String>| s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let (_, client) = self.active().await?;
        let page = client
            .traces(&WireTraceQuery {
                errors_only: args.errors_only,
                flagged: args.flagged_only.then_some(true),
                min_latency_ms: args.min_duration_ms,
                workflow: nonblank(args.workflow),
                request_id: nonblank(args.request_id),
                cursor: nonblank(args.cursor),
                limit: Some(args.limit),
                ..WireTraceQuery::default()
            })
            .await?;
        Ok(TracePage {
            items: page
                .items
                .iter()
                .map(map::trace_summary)
                .collect::<CmdResult<_>>()?,
            next_cursor: page.next_cursor,
            total: None,
        })
    }

    pub async fn get_trace(&self, args: TraceIdArgs) -> CmdResult<TraceDetail> {
        let (_, client) = self.active().await?;
        let t = client.trace(&args.trace_id).await?;
        Ok(TraceDetail {
            summary: map::trace_summary(&t.summary)?,
            spans: t.spans.iter().map(map::span).collect(),
            guardrail: map::guardrail_checks(&t.spans),
        })
    }
}
