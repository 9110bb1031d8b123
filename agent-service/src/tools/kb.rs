//! `kb_search`: ranked knowledge-base search, either over the tenant's articles in the
//! database (term overlap with title, tags and body; deterministic) or through an external
//! retrieval service (`RETRIEVAL_URL`), whose failure makes the tool `Unavailable` so the
//! `faq` workflow can answer in its degraded "no retrieval" mode.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use reqwest::header::ACCEPT;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;
use url::Url;

use super::egress::{Egress, SendError};
use super::http::read_capped;
use super::schema::truncate_chars;
use super::{ToolCtx, ToolError};

/// The name of the knowledge-base search tool.
pub const KB_SEARCH: &str = "kb_search";

pub(super) const DEFAULT_LIMIT: usize = 3;
const MAX_LIMIT: usize = 10;
const SNIPPET_CHARS: usize = 200;
/// Below the tool's own timeout, so a slow service reads as unavailable, not as a timeout.
const REMOTE_TIMEOUT: Duration = Duration::from_millis(2_500);
const MAX_REMOTE_BYTES: usize = 1 << 20;

/// Points per query term found in an article's title, tags and body.
const TITLE_WEIGHT: u32 = 3;
const TAG_WEIGHT: u32 = 2;
const BODY_WEIGHT: u32 = 1;

const STOPWORDS: &[&str] = &[
    "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how", "in",
    "is", "it", "me", "my", "no", "not", "of", "on", "or", "our", "so", "that", "the", "this",
    "to", "was", "we", "what", "when", "where", "which", "why", "with", "you", "your",
];

/// `kb_search` arguments (already schema-checked).
#[derive(Debug, Deserialize)]
pub(super) struct Query {
    query: String,
    limit: Option<usize>,
}

/// How long a tenant's indexed articles are reused before they are read again. Tools
/// never write articles, so this only delays edits made by other means (seeding, admin
/// SQL) by at most this long.
const INDEX_TTL: Duration = Duration::from_secs(5);

/// Where `kb_search` looks.
pub(super) enum Search {
    /// The tenant's `kb_articles` rows, tokenised once and cached per tenant.
    Local(LocalIndex),
    /// `GET {url}?q=…&tenant=…&limit=…` answering `{"articles": [{id, title, snippet, score}]}`.
    Remote { url: Url, egress: Egress },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Hit {
    id: String,
    title: String,
    #[serde(default)]
    snippet: String,
    #[serde(default)]
    score: f64,
}

#[derive(Deserialize)]
struct RemoteAnswer {
    articles: Vec<Hit>,
}

impl Search {
    pub(super) async fn search(&self, ctx: &ToolCtx, q: &Query) -> Result<Value, ToolError> {
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let hits = match self {
            Self::Local(index) => {
                let index = index.articles(ctx).await?;
                rank(&index, &q.query, limit)
            }
            Self::Remote { url, egress } => remote(url, egress, ctx, &q.query, limit).await?,
        };
        Ok(json!({ "articles": hits }))
    }
}

struct Article {
    id: String,
    title: String,
    body: String,
    tags: String,
}

/// An article with its body's sentences (and their terms, for the snippet) worked out
/// once.
pub(super) struct Indexed {
    article: Article,
    sentences: Vec<Sentence>,
}

/// A tenant's articles and an inverted index over them: each term maps to the articles
/// it occurs in, with the points it earns there (title, tags and body weights summed). A
/// search then touches only the postings of its own terms instead of every article.
pub(super) struct KbIndex {
    articles: Vec<Indexed>,
    postings: HashMap<String, Vec<(u32, u32)>>,
}

impl KbIndex {
    fn new(articles: Vec<Article>) -> Self {
        let mut postings: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
        for (i, a) in articles.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            let mut points: HashMap<String, u32> = HashMap::new();
            for (text, weight) in [
                (&a.title, TITLE_WEIGHT),
                (&a.tags, TAG_WEIGHT),
                (&a.body, BODY_WEIGHT),
            ] {
                for term in terms(text) {
                    *points.entry(term).or_default() += weight;
                }
            }
            for (term, p) in points {
                postings.entry(term).or_default().push((i, p));
            }
        }
        let articles = articles
            .into_iter()
            .map(|a| Indexed {
                sentences: sentences(&a.body),
                article: a,
            })
            .collect();
        Self { articles, postings }
    }
}

/// One non-empty sentence of a body (a byte range of it, trimmed) and its terms.
struct Sentence {
    range: Range<usize>,
    terms: BTreeSet<String>,
}

/// The non-empty sentences of `body`, each ending at `.`, `!` or `?` (or at the end).
fn sentences(body: &str) -> Vec<Sentence> {
    let base = body.as_ptr() as usize;
    body.split_inclusive(['.', '!', '?'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let start = s.as_ptr() as usize - base;
            Sentence {
                range: start..start + s.len(),
                terms: terms(s),
            }
        })
        .collect()
}

type TenantIndex = (Instant, Arc<KbIndex>);

/// Per-tenant cache of indexed articles.
#[derive(Default)]
pub(super) struct LocalIndex {
    cache: Mutex<HashMap<String, TenantIndex>>,
}

impl LocalIndex {
    async fn articles(&self, ctx: &ToolCtx) -> Result<Arc<KbIndex>, ToolError> {
        if let Some((at, index)) = self
            .cache
            .lock()
            .expect("kb cache lock")
            .get(ctx.tenant.as_str())
            && at.elapsed() < INDEX_TTL
        {
            return Ok(index.clone());
        }
        let index = Arc::new(KbIndex::new(load(ctx).await?));
        self.cache.lock().expect("kb cache lock").insert(
            ctx.tenant.as_str().to_string(),
            (Instant::now(), index.clone()),
        );
        Ok(index)
    }
}

async fn load(ctx: &ToolCtx) -> Result<Vec<Article>, ToolError> {
    let rows = sqlx::query("SELECT id, title, body, tags FROM kb_articles WHERE tenant = $1")
        .bind(ctx.tenant.as_str())
        .fetch_all(ctx.db.pool())
        .await
        .map_err(|e| ToolError::db(KB_SEARCH, &e))?;
    let articles = rows
        .iter()
        .map(|row| {
            Ok(Article {
                id: row.try_get("id")?,
                title: row.try_get("title")?,
                body: row.try_get("body")?,
                tags: row.try_get("tags")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(|e| ToolError::db(KB_SEARCH, &e))?;
    Ok(articles)
}

/// Lower-cased words of two or more characters, without stopwords, with a plural `s` cut.
fn terms(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 2 && !STOPWORDS.contains(&w.as_str()))
        .map(|w| match w.strip_suffix('s') {
            Some(stem) if w.len() > 3 && !stem.ends_with('s') => stem.to_string(),
            _ => w,
        })
        .collect()
}

/// The best `limit` articles by weighted term overlap, ties broken by id.
fn rank(index: &KbIndex, query: &str, limit: usize) -> Vec<Hit> {
    let wanted = terms(query);
    if wanted.is_empty() {
        return Vec::new();
    }
    let best = u32::try_from(wanted.len())
        .unwrap_or(u32::MAX)
        .saturating_mul(TITLE_WEIGHT + TAG_WEIGHT + BODY_WEIGHT);
    let mut points = vec![0u32; index.articles.len()];
    for term in &wanted {
        for &(i, p) in index.postings.get(term).into_iter().flatten() {
            points[i as usize] += p;
        }
    }
    let mut scored: Vec<(u32, &Indexed)> = points
        .iter()
        .zip(&index.articles)
        .filter(|(p, _)| **p > 0)
        .map(|(p, a)| (*p, a))
        .collect();
    scored.sort_by(|(pa, a), (pb, b)| pb.cmp(pa).then_with(|| a.article.id.cmp(&b.article.id)));
    scored
        .into_iter()
        .take(limit)
        .map(|(points, a)| Hit {
            snippet: snippet(&a.article.body, &a.sentences, &wanted),
            score: (f64::from(points) / f64::from(best) * 1000.0).round() / 1000.0,
            id: a.article.id.clone(),
            title: a.article.title.clone(),
        })
        .collect()
}

/// The first sentence of `body` that mentions a query term (else the first sentence;
/// else the whole body). `sentences` are `body`'s, from [`sentences`].
fn snippet(body: &str, sentences: &[Sentence], wanted: &BTreeSet<String>) -> String {
    let best = sentences
        .iter()
        .find(|s| !s.terms.is_disjoint(wanted))
        .or_else(|| sentences.first())
        .map_or(body, |s| &body[s.range.clone()]);
    truncate_chars(best, SNIPPET_CHARS)
}

async fn remote(
    url: &Url,
    egress: &Egress,
    ctx: &ToolCtx,
    query: &str,
    limit: usize,
) -> Result<Vec<Hit>, ToolError> {
    let unavailable = |message: String| {
        ToolError::unavailable(KB_SEARCH, format!("retrieval service: {message}"))
    };
    let mut url = url.clone();
    url.query_pairs_mut()
        .append_pair("q", query)
        .append_pair("tenant", ctx.tenant.as_str())
        .append_pair("limit", &limit.to_string());
    let request = egress
        .client()
        .get(url)
        .header(ACCEPT, "application/json")
        .timeout(REMOTE_TIMEOUT)
        .build()
        .map_err(|e| unavailable(e.to_string()))?;
    let response = egress.send(request).await.map_err(|e| match e {
        SendError::Denied(denied) => ToolError::EgressDenied(denied.message().to_string()),
        other => unavailable(other.to_string()),
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(unavailable(format!("answered HTTP {status}")));
    }
    let (body, truncated) = read_capped(response, MAX_REMOTE_BYTES)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    if truncated {
        return Err(unavailable(format!(
            "answer is larger than {MAX_REMOTE_BYTES} bytes"
        )));
    }
    let answer: RemoteAnswer = serde_json::from_slice(&body).map_err(|e| {
        unavailable(format!(
            "answer is not {{\"articles\": [{{id, title, snippet, score}}]}}: {e}"
        ))
    })?;
    Ok(answer.articles.into_iter().take(limit).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(id: &str, title: &str, body: &str, tags: &str) -> Article {
        Article {
            id: id.into(),
            title: title.into(),
            body: body.into(),
            tags: tags.into(),
        }
    }

    #[test]
    fn terms_drop_stopwords_and_plurals() {
        let t: Vec<String> = terms("How do I get my REFUNDS? (2FA, 429s) a process")
            .into_iter()
            .collect();
        assert_eq!(t, ["2fa", "429", "get", "process", "refund"]);
    }

    #[test]
    fn ranking_weighs_title_over_tags_over_body_and_breaks_ties_by_id() {
        let articles = vec![
            article("KB-3", "Other", "mentions refund in the body.", ""),
            article("KB-2", "Other", "Nothing here.", "refund"),
            article("KB-1", "Refund policy", "Refunds take five days.", "refund"),
            article("KB-4", "Unrelated", "Nothing.", "misc"),
            article("KB-0", "Other", "Also mentions refund.", ""),
        ];
        let index = KbIndex::new(articles);
        let hits = rank(&index, "refunds", 10);
        let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ids, ["KB-1", "KB-2", "KB-0", "KB-3"]);
        assert_eq!(hits[0].score, 1.0);
        assert_eq!(hits[0].snippet, "Refunds take five days.");
        assert!(
            rank(
                &KbIndex::new(vec![article("KB-1", "x", "y", "z")]),
                "the and of",
                3
            )
            .is_empty()
        );
    }

    #[test]
    fn snippets_prefer_the_matching_sentence() {
        let wanted = terms("locked account");
        let body =
            "Use the reset link. After five failures the account is locked! Admins can unlock it.";
        let snip = |body: &str| snippet(body, &sentences(body), &wanted);
        assert_eq!(snip(body), "After five failures the account is locked!");
        assert_eq!(snip("No match here. Second."), "No match here.");
        assert_eq!(snip("  Ends without a stop   "), "Ends without a stop");
        assert_eq!(snip("   "), "   ", "no sentence: the body as it is");
        assert!(snip(&"word ".repeat(100)).chars().count() <= SNIPPET_CHARS + 1);
    }
}
