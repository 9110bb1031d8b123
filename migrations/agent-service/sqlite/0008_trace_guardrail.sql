-- What the trace list shows of a run's guardrails: `flagged` (1 when a guardrail flagged the
-- run's input or one of its tool results, the root span's flightdeck.guardrail.flagged) and
-- `guardrail_rule` (the rule that blocked the run, else its first flag's; NULL when no
-- guardrail fired). Written with the trace; traces stored before this migration are filled
-- in from their span documents, once.

ALTER TABLE traces ADD COLUMN flagged BIGINT NOT NULL DEFAULT 0;
ALTER TABLE traces ADD COLUMN guardrail_rule TEXT;

UPDATE traces SET flagged = 1 WHERE trace_id IN (
    SELECT trace_id FROM spans WHERE spans LIKE '%"flightdeck.guardrail.flagged":true%'
);
UPDATE traces SET guardrail_rule = (
    SELECT json_extract(spans.spans, '$[0].attributes."flightdeck.guardrail.rule"')
    FROM spans WHERE spans.trace_id = traces.trace_id
) WHERE status = 'blocked';
UPDATE traces SET guardrail_rule = (
    SELECT json_extract(s.value, '$.attributes."flightdeck.guardrail.rule"')
    FROM spans, json_each(spans.spans) AS s
    WHERE spans.trace_id = traces.trace_id
      AND json_extract(s.value, '$.attributes."flightdeck.guardrail.verdict"')
          IN ('flag', 'require_approval', 'withhold')
    ORDER BY s.key LIMIT 1
) WHERE flagged = 1 AND guardrail_rule IS NULL;

-- The "flagged only" filter, newest first. Partial: flagged runs are few, and an unflagged
-- run's insert does not touch it.
CREATE INDEX traces_tenant_flagged ON traces (tenant, started_at DESC, trace_id DESC)
    WHERE flagged = 1;
