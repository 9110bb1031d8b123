//! The Smoke tests view: the local Ollama (reachability, models, pulls with
//! `pull_progress`), an OpenAI-compatible model server (its URL and models, its key in the
//! keyring), the smoke suite run against either with `smoke_progress`, and its stored
//! reports (listed, read, exported as Markdown or JSON).

use std::time::Duration;

use super::dto::*;
use super::{CmdResult, Console, lock, map, write_atomic};
use crate::domain::{BaseUrl, ProfileId, Secret};
use crate::smoke::ollama::OllamaClient;
use crate::smoke::openai::OpenAiClient;
use crate::smoke::{self, SmokeConfig, SmokeProgress};

/// A model name as Ollama accepts it (`llama3.2:3b`, `library/qwen2.5:0.5b`).
fn valid_model(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/');
    let (base, tag) = name.split_once(':').unwrap_or((name, "latest"));
    !base.is_empty()
        && name.len() <= 200
        && base.starts_with(|c: char| c.is_ascii_alphanumeric())
        && base.chars().all(ok)
        && !tag.is_empty()
        && tag.chars().all(|c| ok(c) && c != '/')
}

/// An id that may become part of a file name.
fn file_safe(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The OpenAI-compatible server proposed when nothing else is known: llama.cpp's
/// `llama-server` default port.
pub const DEFAULT_MODEL_SERVER: &str = "http://127.0.0.1:8080/v1";

/// The keyring entry of the model server's key. Profile ids made from names never start
/// with `-` (`profile_id_for` trims it), so no profile's key can take this place.
const MODEL_SERVER_KEY: &str = "-smoke-model-server";

fn model_server_key_id() -> ProfileId {
    ProfileId::parse(MODEL_SERVER_KEY).expect("a valid constant id")
}

/// What a `pull_progress` event says about one status line.
fn pull_event(model: &str, p: crate::smoke::ollama::PullProgress) -> PullProgressEvent {
    PullProgressEvent {
        model: model.to_string(),
        status: p.status,
        digest: p.digest,
        completed_bytes: p.completed,
        total_bytes: p.total,
    }
}

impl Console {
    fn ollama(&self, timeout: Duration) -> OllamaClient {
        OllamaClient::new(
            self.inner.host.http.clone(),
            self.inner.options.ollama_url.clone(),
            timeout,
        )
    }

    pub async fn discover_ollama(&self) -> CmdResult<OllamaStatus> {
        let url = self.inner.options.ollama_url.to_string();
        Ok(match self.ollama(Duration::from_secs(3)).version().await {
            Ok(v) => OllamaStatus {
                url,
                reachable: true,
                version: Some(v),
                error: None,
            },
            Err(e) => OllamaStatus {
                url,
                reachable: false,
                version: None,
                error: Some(format!(
                    "{e} (install Ollama and run `ollama serve`, or set OLLAMA_BASE_URL)"
                )),
            },
        })
    }

    pub async fn list_models(&self) -> CmdResult<Vec<OllamaModel>> {
        let ollama = self.ollama(Duration::from_secs(10));
        let mut out = Vec::new();
        for m in ollama.models().await? {
            let tools = ollama
                .capabilities(&m.name)
                .await
                .map(|c| c.iter().any(|c| c == "tools"))
                .unwrap_or(false);
            out.push(OllamaModel {
                name: m.name,
                size_bytes: m.size,
                family: m.details.family,
                parameter_size: m.details.parameter_size,
                quantization: m.details.quantization_level,
                supports_tools: tools,
                // `/api/tags` times are not read by the core's client yet.
                modified_at_ms: 0,
            });
        }
        Ok(out)
    }

    /// Pulls a model, pushing `pull_progress` for every status line.
    pub async fn pull_model(&self, args: PullModelArgs) -> CmdResult<OllamaModel> {
        self.guard(ActionId::PullModel)?;
        let name = args.model.trim().to_string();
        if !valid_model(&name) {
            return Err(CommandError::invalid(format!(
                "{:?} is not a model name (e.g. llama3.2:3b)",
                args.model
            )));
        }
        let ollama = self.ollama(Duration::from_secs(3600));
        let this = self.clone();
        let model = name.clone();
        let mut on_progress = move |p: crate::smoke::ollama::PullProgress| {
            this.emit("pull_progress", &pull_event(&model, p));
        };
        self.audited(
            "pull_model",
            &format!("model/{name}"),
            ollama.pull(&name, &mut on_progress),
        )
        .await
        .map_err(|e| CommandError {
            // The server's own words (an unknown name: "pull model manifest: file does not
            // exist"), said to be about this pull.
            message: format!("Pulling {name} failed: {}", e.message),
            ..e
        })?;
        let canonical = crate::smoke::ollama::canonical_model(&name);
        self.list_models()
            .await?
            .into_iter()
            .find(|m| crate::smoke::ollama::canonical_model(&m.name) == canonical)
            .ok_or_else(|| {
                CommandError::new(
                    CommandErrorCode::Protocol,
                    format!("Ollama reported {name} pulled but does not list it"),
                )
            })
    }

    /// The stored key of the model server at `url`; `None` when there is none or it was
    /// stored for another server. Given a key, stores it for `url` first; given `""`,
    /// forgets the stored one.
    async fn model_server_key(
        &self,
        url: &BaseUrl,
        given: Option<&str>,
    ) -> CmdResult<Option<Secret>> {
        let secrets = self.inner.host.secrets.clone();
        let keyring = |e: tokio::task::JoinError| {
            CommandError::new(
                CommandErrorCode::Keyring,
                format!("the keyring call did not finish: {e}"),
            )
        };
        match given.map(str::trim) {
            Some("") => {
                tokio::task::spawn_blocking(move || secrets.delete(&model_server_key_id()))
                    .await
                    .map_err(keyring)??;
                lock(&self.inner.state).persisted.model_server_key_url = None;
                self.save_settings()?;
                Ok(None)
            }
            Some(raw) => {
                let key = Secret::parse(raw)?;
                let stored = key.clone();
                tokio::task::spawn_blocking(move || secrets.set(&model_server_key_id(), &stored))
                    .await
                    .map_err(keyring)??;
                lock(&self.inner.state).persisted.model_server_key_url = Some(url.to_string());
                self.save_settings()?;
                Ok(Some(key))
            }
            None => {
                let owner = lock(&self.inner.state)
                    .persisted
                    .model_server_key_url
                    .clone();
                if owner.as_deref() != Some(url.as_str()) {
                    return Ok(None);
                }
                Ok(
                    tokio::task::spawn_blocking(move || secrets.get(&model_server_key_id()))
                        .await
                        .map_err(keyring)??,
                )
            }
        }
    }

    /// The OpenAI-compatible server to propose, and whether it is the Local service's.
    fn proposed_model_server(&self) -> (String, bool) {
        if let Ok(Some(server)) = &self.inner.options.model_server {
            return (server.url.to_string(), true);
        }
        let last = lock(&self.inner.state).persisted.model_server_url.clone();
        (
            last.unwrap_or_else(|| DEFAULT_MODEL_SERVER.to_string()),
            false,
        )
    }

    /// An OpenAI-compatible model server: reachable or why not, the models it serves, the
    /// URL to propose when none is given.
    pub async fn discover_model_server(
        &self,
        args: ModelServerArgs,
    ) -> CmdResult<ModelServerStatus> {
        let (proposed, local) = self.proposed_model_server();
        let raw = args.url.as_deref().map(str::trim).filter(|u| !u.is_empty());
        let url = BaseUrl::parse(raw.unwrap_or(&proposed))?;
        let detected = local && url.as_str() == proposed;
        let key = self.model_server_key(&url, args.api_key.as_deref()).await?;
        let key_stored = key.is_some();
        let client = OpenAiClient::new(
            self.inner.host.http.clone(),
            url.clone(),
            Duration::from_secs(5),
            key.map(|k| k.expose().to_string()),
        );
        let default_model = match &self.inner.options.model_server {
            Ok(Some(server)) if detected => Some(server.model.clone()),
            _ => None,
        };
        Ok(match client.models().await {
            Ok(models) => ModelServerStatus {
                url: url.to_string(),
                reachable: true,
                models,
                error: None,
                detected,
                default_model,
                key_stored,
            },
            Err(e) => ModelServerStatus {
                url: url.to_string(),
                reachable: false,
                models: Vec::new(),
                error: Some(format!(
                    "{e} (start an OpenAI-compatible server such as llama.cpp's llama-server, or give its base URL with /v1)"
                )),
                detected,
                default_model,
                key_stored,
            },
        })
    }

    /// The suite's configuration for `args`.
    async fn smoke_config(&self, args: &RunSmokeArgs) -> CmdResult<SmokeConfig> {
        match args.target {
            SmokeTarget::Ollama => {
                if args.server_url.is_some() || args.api_key.is_some() {
                    return Err(CommandError::invalid(
                        "An Ollama smoke run takes no server URL or key: the console's Ollama is OLLAMA_BASE_URL",
                    ));
                }
                Ok(SmokeConfig::new(
                    self.inner.options.ollama_url.clone(),
                    &args.model,
                )?)
            }
            SmokeTarget::OpenaiCompatible => {
                let url = match args
                    .server_url
                    .as_deref()
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                {
                    Some(u) => BaseUrl::parse(u)?,
                    None => BaseUrl::parse(&self.proposed_model_server().0)?,
                };
                let mut config = SmokeConfig::openai_compatible(url.clone(), &args.model)?;
                config.api_key = self
                    .model_server_key(&url, args.api_key.as_deref())
                    .await?
                    .map(|k| k.expose().to_string());
                let changed = {
                    let mut state = lock(&self.inner.state);
                    let before = state.persisted.model_server_url.replace(url.to_string());
                    before.as_deref() != Some(url.as_str())
                };
                if changed {
                    self.save_settings()?;
                }
                Ok(config)
            }
        }
    }

    /// Runs the smoke suite (pushing `smoke_progress`), stores and returns the report.
    pub async fn run_smoke(&self, args: RunSmokeArgs) -> CmdResult<SmokeReport> {
        self.guard(ActionId::RunSmoke)?;
        let mut config = self.smoke_config(&args).await?;
        if args.through_agent {
            let id = self.active_id().ok_or_else(|| {
                CommandError::invalid(
                    "The agent-service checks need a connection: add or pick a profile",
                )
            })?;
            config.agent = Some(self.client_of(&id, "invoke").await?);
        }
        let this = self.clone();
        let target = config.target;
        let model = args.model.clone();
        let progress = move |p: SmokeProgress| match p {
            SmokeProgress::CheckStarted { name, index, total } => this.emit(
                "smoke_progress",
                &SmokeProgressEvent::CheckStarted {
                    name,
                    title: smoke::title(target, index).to_string(),
                    index: index as u64,
                    total: total as u64,
                },
            ),
            SmokeProgress::CheckFinished { result } => this.emit(
                "smoke_progress",
                &SmokeProgressEvent::CheckFinished {
                    result: map::check_result(&result),
                },
            ),
            SmokeProgress::Pull { progress } => {
                this.emit("pull_progress", &pull_event(&model, progress))
            }
        };
        let host = &self.inner.host;
        let report = smoke::run(&config, host.http.clone(), host.clock.as_ref(), &progress).await;
        self.audited(
            "run_smoke",
            &format!("smoke/{}", report.id),
            host.store.save_smoke_report(&report),
        )
        .await?;
        Ok(map::smoke_report(&report))
    }

    pub async fn list_smoke_runs(&self) -> CmdResult<Vec<SmokeRunSummary>> {
        Ok(self
            .inner
            .host
            .store
            .smoke_runs(200)
            .await?
            .into_iter()
            .map(|r| SmokeRunSummary {
                id: r.id,
                model: r.model,
                started_at_ms: r.started_at_ms,
                passed: r.passed,
                failed: r.failed,
                skipped: r.skipped,
            })
            .collect())
    }

    async fn stored_report(&self, id: &str) -> CmdResult<crate::smoke::SmokeReport> {
        self.inner
            .host
            .store
            .smoke_report(id)
            .await?
            .ok_or_else(|| CommandError::not_found(format!("smoke run {id} not found")))
    }

    pub async fn get_smoke_report(&self, args: SmokeRunIdArgs) -> CmdResult<SmokeReport> {
        Ok(map::smoke_report(&self.stored_report(&args.id).await?))
    }

    /// Writes a stored report as Markdown or JSON into the export directory.
    pub async fn export_smoke_report(&self, args: ExportSmokeArgs) -> CmdResult<ExportedFile> {
        if !file_safe(&args.id) {
            return Err(CommandError::invalid(format!(
                "smoke run id {:?} is not valid",
                args.id
            )));
        }
        let report = self.stored_report(&args.id).await?;
        let (text, ext) = match args.format {
            ExportFormat::Markdown => (report.to_markdown(), "md"),
            ExportFormat::Json => (report.to_json(), "json"),
        };
        let path = self
            .inner
            .options
            .export_dir
            .join(format!("flightdeck-smoke-{}.{ext}", args.id));
        write_atomic(&path, text.as_bytes())?;
        Ok(ExportedFile {
            path: path.display().to_string(),
            bytes: text.len() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names() {
        for ok in ["llama3.2:3b", "gemma2", "library/qwen2.5:0.5b-instruct"] {
            assert!(valid_model(ok), "{ok}");
        }
        for bad in ["", ":3b", "llama 3", "llama3:", "-x", "a:b/c", "x;rm"] {
            assert!(!valid_model(bad), "{bad}");
        }
    }

    #[test]
    fn file_safe_ids() {
        assert!(file_safe("smoke_0190abc"));
        for bad in ["", "../etc", "a/b", "a b", &"x".repeat(101)] {
            assert!(!file_safe(bad), "{bad}");
        }
    }
}
