//! The `agent-service` binary: parses the command line and config, sets up telemetry,
//! and hands over to the library.

use std::process::ExitCode;

use agent_service::cli::{Cli, Command, GuardrailsCommand, KeysCommand};
use agent_service::config::Settings;
use agent_service::db::{Db, audit, demo, keys};
use agent_service::domain::{Role, Roles, TenantId};
use agent_service::guardrails::{Policy, Redactor};
use agent_service::startup::Application;
use agent_service::telemetry;
use clap::Parser;

/// mimalloc: the request path allocates many small strings and JSON values; under load
/// glibc malloc/free showed up as ~15 % of CPU samples.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("agent-service: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let policy = match Policy::load(settings.guardrails.policy_path.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("agent-service: invalid configuration: POLICY_PATH: {e}");
            return ExitCode::from(2);
        }
    };
    // Tool and workflow config is checked up front too, so every config error exits 2.
    if let Err(e) = agent_service::tools::Registry::new(&settings.tools)
        .map(|_| ())
        .and_then(|()| {
            agent_service::workflows::configured(
                &settings.tools,
                &settings.budgets,
                &settings.providers,
            )
            .map(|_| ())
        })
    {
        eprintln!("agent-service: invalid configuration: {e}");
        return ExitCode::from(2);
    }
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Guardrails { action } = command {
        return guardrails_command(action, &policy);
    }
    let serving = matches!(command, Command::Serve);
    // The server logs JSON to stdout; one-shot commands print results to stdout and log
    // warnings to stderr.
    let static_fields = vec![
        ("service", "agent-service".to_string()),
        ("version", settings.release.release_version.clone()),
        ("track", settings.release.release_track.as_str().to_string()),
        ("policy_version", policy.version.to_string()),
    ];
    if serving {
        telemetry::init_subscriber(telemetry::get_subscriber(
            &settings.logging.log_level,
            settings.logging.log_format,
            static_fields,
            policy.redactor.clone(),
            std::io::stdout,
        ));
    } else {
        telemetry::init_subscriber(telemetry::get_subscriber(
            "warn",
            settings.logging.log_format,
            static_fields,
            Redactor::builtin(),
            std::io::stderr,
        ));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("agent-service: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `eval run` has its own exit statuses (1 gate failed, 2 usage, 3 run failed).
    if let Command::Eval { action } = command {
        return runtime.block_on(agent_service::evals::command::run(
            action.into(),
            settings,
            policy,
        ));
    }
    match runtime.block_on(run(command, settings, policy)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "agent-service failed");
            eprintln!("agent-service: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Creates a key with its `key.created` audit event, in one transaction.
async fn create_key(
    db: &Db,
    tenant: &TenantId,
    name: &str,
    roles: &Roles,
    actor: &str,
    policy: &Policy,
) -> anyhow::Result<keys::NewKey> {
    let now = now_ms();
    let mut tx = db.pool().begin().await?;
    let k = keys::create_in(&mut tx, tenant, name, roles, now).await?;
    let event = audit::NewEvent {
        chain: audit::Chain::Tenant(tenant.clone()),
        actor: actor.into(),
        action: "key.created".into(),
        resource: format!("key/{}", k.key.id),
        details: serde_json::json!({ "name": name, "roles": roles.to_csv() }),
        request_id: None,
        policy_version: policy.version.to_string(),
    };
    audit::append(&mut tx, &event, now).await?;
    tx.commit().await?;
    Ok(k)
}

/// Revokes a key with its `key.revoked` audit event, in one transaction; false when no
/// live key has that id.
async fn revoke_key(db: &Db, id: &str, policy: &Policy) -> anyhow::Result<bool> {
    let now = now_ms();
    let mut tx = db.pool().begin().await?;
    let Some(tenant) = keys::revoke_in(&mut tx, id, now).await? else {
        tx.rollback().await?;
        return Ok(false);
    };
    let event = audit::NewEvent {
        chain: audit::Chain::Tenant(tenant),
        actor: "cli".into(),
        action: "key.revoked".into(),
        resource: format!("key/{id}"),
        details: serde_json::json!({}),
        request_id: None,
        policy_version: policy.version.to_string(),
    };
    audit::append(&mut tx, &event, now).await?;
    tx.commit().await?;
    Ok(true)
}

async fn run(command: Command, settings: Settings, policy: Policy) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(settings, policy).await?;
            app.run_until_stopped().await
        }
        Command::Migrate => {
            Db::open(&settings.database).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Keys { action } => {
            let db = Db::open(&settings.database).await?;
            match action {
                KeysCommand::Create {
                    tenant,
                    roles,
                    name,
                } => {
                    let tenant =
                        TenantId::parse(&tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
                    let roles =
                        Roles::parse(&roles).map_err(|e| anyhow::anyhow!("--roles: {e}"))?;
                    let k = create_key(&db, &tenant, &name, &roles, "cli", &policy).await?;
                    eprintln!(
                        "created {} for tenant {} with roles {}; the key is shown only now:",
                        k.key.id,
                        tenant,
                        roles.to_csv()
                    );
                    println!("{}", k.plaintext);
                }
                KeysCommand::List { tenant } => {
                    let tenant = tenant
                        .map(|t| TenantId::parse(&t))
                        .transpose()
                        .map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
                    println!("id\ttenant\tname\troles\tcreated\tstatus");
                    for k in keys::list(&db, tenant.as_ref()).await? {
                        let created = chrono::DateTime::from_timestamp_millis(k.created_at)
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_default();
                        let status = if k.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        };
                        println!(
                            "{}\t{}\t{}\t{}\t{}\t{}",
                            k.id,
                            k.tenant,
                            k.name,
                            k.roles.to_csv(),
                            created,
                            status
                        );
                    }
                }
                KeysCommand::Revoke { id } => {
                    if revoke_key(&db, &id, &policy).await? {
                        println!("revoked {id}");
                    } else {
                        anyhow::bail!(
                            "no active key with id {id:?}; see `agent-service keys list`"
                        );
                    }
                }
            }
            db.close().await;
            Ok(())
        }
        Command::SeedDemo => {
            let db = Db::open(&settings.database).await?;
            let report = demo::seed(&db).await?;
            eprintln!("demo data: {report:?}");
            let demo_tenant = TenantId::parse("demo").map_err(anyhow::Error::msg)?;
            let other = TenantId::parse("other").map_err(anyhow::Error::msg)?;
            let mut created = Vec::new();
            for role in Role::ALL {
                created.push((role, demo_tenant.clone()));
            }
            created.push((Role::Approver, other.clone()));
            created.push((Role::Invoke, other));
            for (role, tenant) in created {
                let roles = Roles::parse(role.as_str()).map_err(anyhow::Error::msg)?;
                let name = format!("demo-{role}");
                let k = create_key(&db, &tenant, &name, &roles, "cli:seed-demo", &policy).await?;
                println!("{role}\t{tenant}\t{}", k.plaintext);
            }
            db.close().await;
            Ok(())
        }
        Command::Eval { .. } | Command::Guardrails { .. } => {
            anyhow::bail!("this command is dispatched before the others; this is a bug")
        }
        Command::CheckConfig => {
            println!(
                "# effective configuration (defaults < AGENT_CONFIG file < environment; secrets masked)"
            );
            for (k, v) in settings.describe() {
                println!("{k} = {v}");
            }
            println!();
            println!("# pinned versions");
            println!("version = {}", settings.release.release_version);
            println!("git_sha = {}", env!("AGENT_GIT_SHA"));
            for name in settings.providers.chain() {
                let link = settings.providers.link(&name)?;
                println!(
                    "provider_chain.{name} = {} ({})",
                    link.kind.as_str(),
                    link.model
                );
            }
            let wfs = agent_service::workflows::builtin();
            println!(
                "prompt_version = {}",
                agent_service::workflows::prompt_set_version(&wfs)
            );
            for w in &wfs {
                println!("prompt.{} = {} {}", w.name, w.prompt_version, w.prompt_hash);
            }
            println!("policy_version = {} ({})", policy.version, policy.hash());
            let registry = agent_service::tools::Registry::new(&settings.tools)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("tool_schema_hash = {}", registry.schema_hash());
            Ok(())
        }
    }
}

/// `agent-service guardrails ...`: prints to stdout; exit 2 on unreadable input.
fn guardrails_command(action: GuardrailsCommand, policy: &Policy) -> ExitCode {
    use agent_service::guardrails::measure;
    use std::io::Read;
    let fail = |e: String| {
        eprintln!("agent-service: {e}");
        ExitCode::from(2)
    };
    match action {
        GuardrailsCommand::Scan => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                return fail(format!("cannot read standard input: {e}"));
            }
            let d = policy.scan_input(&text);
            let reasons: Vec<serde_json::Value> = d
                .reasons
                .iter()
                .map(|r| {
                    serde_json::json!({"name": r.name, "category": r.category.as_str(),
                        "weight": r.weight, "evidence": r.evidence})
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({"policy_version": policy.version.as_str(),
                    "action": d.action.as_str(), "score": d.score, "rule": d.rule,
                    "reasons": reasons})
            );
            ExitCode::SUCCESS
        }
        GuardrailsCommand::Redact => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                return fail(format!("cannot read standard input: {e}"));
            }
            print!("{}", policy.redactor.redact(&text).text);
            ExitCode::SUCCESS
        }
        GuardrailsCommand::Measure {
            corpus,
            pii,
            pii_benign,
            timing_rounds,
            json,
            model,
        } => {
            let with_model;
            let policy = match model {
                Some(path) => {
                    let bytes = match std::fs::read(&path) {
                        Ok(b) => b,
                        Err(e) => return fail(format!("{}: {e}", path.display())),
                    };
                    match agent_service::guardrails::Model::parse(&bytes) {
                        Ok(m) => {
                            with_model = policy.clone().with_model(m);
                            &with_model
                        }
                        Err(e) => return fail(format!("{}: {e}", path.display())),
                    }
                }
                None => policy,
            };
            let examples: Vec<measure::Example> = match measure::read_jsonl(&corpus) {
                Ok(e) => e,
                Err(e) => return fail(e),
            };
            let detection = measure::detection(policy, &examples);
            let pii_report = match pii {
                Some(path) => {
                    let cases = match measure::read_jsonl(&path) {
                        Ok(c) => c,
                        Err(e) => return fail(e),
                    };
                    let mut benign: Vec<measure::Example> = examples
                        .iter()
                        .filter(|e| e.label == "benign")
                        .cloned()
                        .collect();
                    if let Some(extra) = pii_benign {
                        match measure::read_jsonl(&extra) {
                            Ok(more) => benign.extend(more),
                            Err(e) => return fail(e),
                        }
                    }
                    Some(measure::pii(&policy.redactor, &cases, &benign))
                }
                None => None,
            };
            let timing = (timing_rounds > 0)
                .then(|| measure::timing(policy, &examples, 4000, timing_rounds));
            print!(
                "{}",
                measure::summary(&detection, pii_report.as_ref(), timing.as_ref())
            );
            if let Some(path) = json {
                let report = serde_json::json!({"policy_version": policy.version.as_str(),
                    "detection": detection, "pii": pii_report, "timing": timing});
                if let Err(e) = std::fs::write(&path, report.to_string()) {
                    return fail(format!("{}: {e}", path.display()));
                }
            }
            ExitCode::SUCCESS
        }
        GuardrailsCommand::Features {
            input,
            output,
            bits,
        } => {
            let examples: Vec<measure::Example> = match measure::read_jsonl(&input) {
                Ok(e) => e,
                Err(e) => return fail(e),
            };
            let file = match std::fs::File::create(&output) {
                Ok(f) => f,
                Err(e) => return fail(format!("{}: {e}", output.display())),
            };
            let mut out = std::io::BufWriter::new(file);
            if let Err(e) = measure::write_features(bits, &examples, &mut out)
                .and_then(|()| std::io::Write::flush(&mut out))
            {
                return fail(format!("{}: {e}", output.display()));
            }
            ExitCode::SUCCESS
        }
    }
}
