//! Provider fallback chains: named links, each a [`Provider`] with its own timeout,
//! retries, circuit breaker and price, and the ordered chains the service and its
//! workflows call them in.
//!
//! The engine calls a chain's links in order (it owns the loop, because each attempt is a
//! span and is booked at its own link's price). A link hands the call to the next one when
//! [`fallback_reason`] says so: its circuit is open, it timed out, or it failed the way its
//! breaker counts (unreachable, 5xx/429, a broken or garbled stream) — and, for a streamed
//! run, only while none of the run's text has reached the client. A request the provider
//! refused (4xx, a prompt over the context window) is not handed on: it is the request
//! that is wrong, not the link.
//!
//! Which link is *serving* a chain: the one that answered its latest call while that
//! link's circuit is not open; before any answer, or once that circuit opened, the first
//! link whose circuit is not open; none when every circuit is open.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::{CircuitState, Provider, ProviderError};
use crate::config::{ConfigError, Price, ProviderConfig, ProviderKind};

/// One link of a chain: a named provider and its price.
pub struct Link {
    pub provider: Provider,
    /// USD per 1,000 tokens; `None`: the `[prices.<model>]` table decides.
    pub price: Option<Price>,
}

impl Link {
    pub fn name(&self) -> &str {
        self.provider.name()
    }

    /// True for the deterministic offline model.
    pub fn scripted(&self) -> bool {
        self.provider.kind() == ProviderKind::Scripted.as_str()
    }
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} {})",
            self.name(),
            self.provider.kind(),
            self.provider.model()
        )
    }
}

/// Nothing answered yet.
const NONE: usize = usize::MAX;

/// An ordered list of links, and which of them answered last.
#[derive(Debug)]
pub struct Chain {
    links: Vec<Arc<Link>>,
    last_answered: AtomicUsize,
}

impl Chain {
    /// A chain of at least one link.
    pub fn new(links: Vec<Arc<Link>>) -> Self {
        assert!(!links.is_empty(), "a chain has at least one link");
        Self {
            links,
            last_answered: AtomicUsize::new(NONE),
        }
    }

    pub fn links(&self) -> &[Arc<Link>] {
        &self.links
    }

    /// The first link: where every call starts.
    pub fn primary(&self) -> &Arc<Link> {
        &self.links[0]
    }

    /// The link names, in order.
    pub fn names(&self) -> Vec<String> {
        self.links.iter().map(|l| l.name().to_string()).collect()
    }

    /// Records that link `index` answered a call.
    pub fn answered(&self, index: usize) {
        self.last_answered.store(index, Ordering::Relaxed);
    }

    /// The index of the link serving this chain now (see the module doc).
    pub fn serving(&self) -> Option<usize> {
        let open = |i: usize| self.links[i].provider.circuit_state() == CircuitState::Open;
        let last = self.last_answered.load(Ordering::Relaxed);
        if last < self.links.len() && !open(last) {
            return Some(last);
        }
        (0..self.links.len()).find(|&i| !open(i))
    }

    /// The serving link's name.
    pub fn serving_name(&self) -> Option<&str> {
        self.serving().map(|i| self.links[i].name())
    }
}

/// Whether a link that failed with `err` hands the call to the next link, and the
/// `reason` label of `agent_provider_fallbacks_total` when it does. `streamed`: some of the
/// run's text has already reached the client, so another model must not continue it.
pub fn fallback_reason(err: &ProviderError, streamed: bool) -> Option<&'static str> {
    if streamed {
        return None;
    }
    match err {
        ProviderError::CircuitOpen { .. }
        | ProviderError::Timeout(_)
        | ProviderError::Unavailable(_)
        | ProviderError::Stream(_)
        | ProviderError::Protocol(_) => Some(err.kind()),
        ProviderError::Rejected(_) | ProviderError::ContextExceeded(_) => None,
    }
}

/// Whether `next` can still be tried before `deadline`: it needs a second (its timeout,
/// when shorter), like a retry.
pub fn fits_before(next: &Link, deadline: Instant) -> bool {
    let needed = next.provider.timeout().min(Duration::from_secs(1));
    deadline.saturating_duration_since(Instant::now()) >= needed
}

/// Every provider the service calls: the links by name, the service's chain and the
/// workflows' own chains. Links are shared: a workflow's chain and the service's use the
/// same breaker for the same name.
#[derive(Debug)]
pub struct Providers {
    /// In first-use order: the service chain's links first.
    links: Vec<Arc<Link>>,
    service: Arc<Chain>,
    workflows: BTreeMap<String, Arc<Chain>>,
}

impl Providers {
    /// The chains of `cfg`, building each link in use once with `build`.
    pub fn build(
        cfg: &ProviderConfig,
        mut build: impl FnMut(&crate::config::ProviderLink) -> Provider,
    ) -> Result<Self, ConfigError> {
        let mut links: Vec<Arc<Link>> = Vec::new();
        for name in cfg.links_in_use() {
            let spec = cfg.link(&name)?;
            links.push(Arc::new(Link {
                provider: build(&spec),
                price: spec.price,
            }));
        }
        let chain = |names: &[String]| -> Arc<Chain> {
            Arc::new(Chain::new(
                names
                    .iter()
                    .filter_map(|n| links.iter().find(|l| l.name() == n).cloned())
                    .collect(),
            ))
        };
        let service = chain(&cfg.chain());
        let workflows = cfg
            .workflow_chains
            .iter()
            .map(|(wf, names)| (wf.clone(), chain(names)))
            .collect();
        Ok(Self {
            links,
            service,
            workflows,
        })
    }

    /// One chain of the given providers, for every workflow (tests, tools).
    pub fn single(chain: Vec<Provider>) -> Self {
        let links: Vec<Arc<Link>> = chain
            .into_iter()
            .map(|provider| {
                Arc::new(Link {
                    provider,
                    price: None,
                })
            })
            .collect();
        Self {
            service: Arc::new(Chain::new(links.clone())),
            links,
            workflows: BTreeMap::new(),
        }
    }

    /// The service's chain.
    pub fn service(&self) -> &Arc<Chain> {
        &self.service
    }

    /// The chain `workflow` runs on: its own, or the service's.
    pub fn for_workflow(&self, workflow: &str) -> &Arc<Chain> {
        self.workflows.get(workflow).unwrap_or(&self.service)
    }

    /// The workflows with a chain of their own.
    pub fn workflow_chains(&self) -> &BTreeMap<String, Arc<Chain>> {
        &self.workflows
    }

    /// Every link in use, the service chain's first.
    pub fn links(&self) -> &[Arc<Link>] {
        &self.links
    }

    /// The service chain's first link: the provider and model the service names itself by.
    pub fn primary(&self) -> &Provider {
        &self.service.primary().provider
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::Settings;
    use crate::metrics::Metrics;
    use crate::providers::scripted::Scripted;
    use crate::providers::{ChatMessage, ChatRequest, ResilienceConfig};

    fn provider(name: &str, open_for: Duration, metrics: &Arc<Metrics>) -> Provider {
        Provider::named(
            name,
            Arc::new(Scripted::new()),
            ResilienceConfig {
                timeout: Duration::from_secs(5),
                max_retries: 0,
                failure_threshold: 1,
                open_for,
            },
            metrics.clone(),
        )
    }

    #[test]
    fn only_link_failures_fall_back_and_never_after_text_reached_the_client() {
        let link_failures = [
            ProviderError::CircuitOpen {
                retry_after_secs: 3,
            },
            ProviderError::Timeout(30),
            ProviderError::Unavailable("HTTP 503: busy".into()),
            ProviderError::Stream("reading the response: connection reset".into()),
            ProviderError::Protocol("not JSON".into()),
        ];
        for err in &link_failures {
            assert_eq!(fallback_reason(err, false), Some(err.kind()), "{err:?}");
            assert_eq!(fallback_reason(err, true), None, "{err:?} after text");
        }
        for err in [
            ProviderError::Rejected("HTTP 400: bad".into()),
            ProviderError::ContextExceeded("2048 tokens".into()),
        ] {
            assert_eq!(fallback_reason(&err, false), None, "{err:?}");
        }
    }

    #[tokio::test]
    async fn the_serving_link_follows_answers_and_open_circuits() {
        let metrics = Arc::new(Metrics::new());
        let set = Providers::single(vec![
            provider("local", Duration::from_secs(60), &metrics),
            provider("hosted", Duration::from_secs(60), &metrics),
        ]);
        let chain = set.service();
        assert_eq!(chain.serving_name(), Some("local"), "before any call");
        chain.answered(1);
        assert_eq!(chain.serving_name(), Some("hosted"), "the last to answer");
        chain.answered(0);
        assert_eq!(chain.serving_name(), Some("local"));

        // The local link's circuit opens (threshold 1): the hosted one serves.
        let failing = Provider::named(
            "local",
            Arc::new(Down),
            ResilienceConfig {
                timeout: Duration::from_secs(5),
                max_retries: 0,
                failure_threshold: 1,
                open_for: Duration::from_secs(60),
            },
            metrics.clone(),
        );
        let set = Providers::single(vec![
            failing.clone(),
            provider("hosted", Duration::from_secs(60), &metrics),
        ]);
        let req = ChatRequest::new("faq", vec![ChatMessage::user("hi")], 10);
        assert!(failing.chat(&req, None).await.is_err());
        assert_eq!(failing.circuit_state(), CircuitState::Open);
        assert_eq!(set.service().serving_name(), Some("hosted"));
        assert!(
            metrics
                .encode()
                .contains(r#"agent_circuit_state{dependency="provider:local"} 2"#),
            "one breaker series per link"
        );

        // Every circuit open: nobody serves.
        let only = Providers::single(vec![failing]);
        assert_eq!(only.service().serving(), None);
    }

    struct Down;

    #[async_trait::async_trait]
    impl super::super::ChatModel for Down {
        fn kind(&self) -> &'static str {
            "ollama"
        }
        fn model(&self) -> &str {
            "down"
        }
        async fn chat(
            &self,
            _req: &ChatRequest,
            _sink: Option<&super::super::TokenSink>,
        ) -> Result<super::super::ChatResponse, ProviderError> {
            Err(ProviderError::Unavailable("connection refused".into()))
        }
        async fn health(&self) -> Result<(), ProviderError> {
            Err(ProviderError::Unavailable("connection refused".into()))
        }
    }

    #[test]
    fn chains_share_links_by_name_and_workflows_fall_back_to_the_service_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            r#"
provider_chain = ["local", "hosted"]
[providers.local]
kind = "ollama"
base_url = "http://127.0.0.1:1"
model = "llama3.2"
timeout_secs = 3
circuit_open_secs = 7
[providers.hosted]
kind = "openai"
base_url = "http://127.0.0.1:2/v1"
model = "small"
price = { input_per_1k = 0.1, output_per_1k = 0.2 }
[workflow_provider_chain]
faq = ["hosted", "scripted"]
"#,
        )
        .unwrap();
        let env: BTreeMap<String, String> =
            [("AGENT_CONFIG".to_string(), path.display().to_string())].into();
        let settings = Settings::load_from(&env).unwrap();
        let metrics = Arc::new(Metrics::new());
        let mut built = Vec::new();
        let set = Providers::build(&settings.providers, |spec| {
            built.push((spec.name.clone(), spec.timeout_secs, spec.circuit_open_secs));
            crate::providers::build_link(spec, reqwest::Client::new(), metrics.clone())
        })
        .unwrap();
        assert_eq!(
            built,
            [
                ("local".to_string(), 3, 7),
                ("hosted".to_string(), 30, 30),
                ("scripted".to_string(), 30, 30),
            ],
            "each link built once, with its own resilience"
        );
        assert_eq!(set.service().names(), ["local", "hosted"]);
        assert_eq!(set.for_workflow("faq").names(), ["hosted", "scripted"]);
        assert_eq!(
            set.for_workflow("ticket_update").names(),
            ["local", "hosted"]
        );
        assert!(Arc::ptr_eq(
            &set.service().links()[1],
            &set.for_workflow("faq").links()[0]
        ));
        assert_eq!(set.primary().kind(), "ollama");
        assert_eq!(set.links()[1].price.map(|p| p.output_per_1k), Some(0.2));
    }
}
