//! The Smoke tests view: the local Ollama (reachability, models, pulls with
//! `pull_progress`), the smoke suite run with `smoke_progress`, and its stored reports
//! (listed, read, exported as Markdown or JSON).

use std::time::Duration;

use super::dto::*;
use super::{CmdResult, Console, map, write_atomic};
use crate::smoke::ollama::OllamaClient;
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
            this.emit(
                "pull_progress",
                &PullProgressEvent {
                    model: model.clone(),
                    status: p.status,
                    completed_bytes: p.completed,
                    total_bytes: p.total,
                },
            );
        };
        self.audited(
            "pull_model",
            &format!("model/{name}"),
            ollama.pull(&name, &mut on_progress),
        )
        .await?;
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

    /// Runs the smoke suite (pushing `smoke_progress`), stores and returns the report.
    pub async fn run_smoke(&self, args: RunSmokeArgs) -> CmdResult<SmokeReport> {
        self.guard(ActionId::RunSmoke)?;
        let mut config = SmokeConfig::new(self.inner.options.ollama_url.clone(), &args.model)?;
        if args.through_agent {
            let id = self.active_id().ok_or_else(|| {
                CommandError::invalid(
                    "The agent-service checks need a connection: add or pick a profile",
                )
            })?;
            config.agent = Some(self.client_of(&id, "invoke").await?);
        }
        let this = self.clone();
        let progress = move |p: SmokeProgress| match p {
            SmokeProgress::CheckStarted { name, index, total } => {
                let title = smoke::CHECKS
                    .iter()
                    .find(|(id, _)| *id == name)
                    .map_or_else(|| name.clone(), |(_, t)| (*t).to_string());
                this.emit(
                    "smoke_progress",
                    &SmokeProgressEvent::CheckStarted {
                        name,
                        title,
                        index: index as u64,
                        total: total as u64,
                    },
                );
            }
            SmokeProgress::CheckFinished { result } => this.emit(
                "smoke_progress",
                &SmokeProgressEvent::CheckFinished {
                    result: map::check_result(&result),
                },
            ),
            SmokeProgress::Pull { progress } => this.emit(
                "pull_progress",
                &PullProgressEvent {
                    model: args.model.clone(),
                    status: progress.status,
                    completed_bytes: progress.completed,
                    total_bytes: progress.total,
                },
            ),
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
