//! The command layer: one `#[tauri::command]` per `CommandMap` entry of
//! `ui/src/lib/ipc/types.ts`, each one delegation into `flightdeck_core::console::Console`
//! (same name, the UI's single `args` argument, the core's `CommandError` on failure).
//! `ui/tests/ipc-commands.test.js` reads this file's handler list and fails, naming them,
//! on commands that it and `CommandMap` (or the UI's mock backend) do not share.

use flightdeck_core::console::CommandError;
use flightdeck_core::console::dto::*;
use flightdeck_core::releases::dto as rd;
use tauri::State;

use crate::AppState;

/// Every command, for `Builder::invoke_handler`.
pub fn handler() -> impl Fn(tauri::ipc::Invoke) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        list_profiles,
        add_agent_profile,
        remove_profile,
        set_active_profile,
        keyring_status,
        get_permissions,
        get_settings,
        update_settings,
        get_overview,
        get_charts,
        list_workflows,
        list_traces,
        get_trace,
        list_approvals,
        get_approval,
        decide_approval,
        verify_audit,
        list_eval_suites,
        list_eval_runs,
        get_eval_run,
        start_eval,
        eval_pass_rates,
        discover_ollama,
        list_models,
        pull_model,
        run_smoke,
        list_smoke_runs,
        get_smoke_report,
        export_smoke_report,
        get_freeze_state,
        incident_switch,
        unfreeze_writes,
        notify,
        list_kube_contexts,
        add_kube_profile,
        link_kube_profile,
        list_releases,
        get_release,
        promote_release,
        abort_release,
        undo_release,
        pause_release,
        resume_release,
    ]
}

#[tauri::command]
pub async fn list_profiles(state: State<'_, AppState>) -> Result<ProfileList, CommandError> {
    state.console().await?.list_profiles().await
}

#[tauri::command]
pub async fn add_agent_profile(
    state: State<'_, AppState>,
    args: AddAgentProfileArgs,
) -> Result<Profile, CommandError> {
    state.console().await?.add_agent_profile(args).await
}

#[tauri::command]
pub async fn remove_profile(
    state: State<'_, AppState>,
    args: ProfileIdArgs,
) -> Result<ProfileList, CommandError> {
    state.console().await?.remove_profile(args).await
}

#[tauri::command]
pub async fn set_active_profile(
    state: State<'_, AppState>,
    args: ProfileIdArgs,
) -> Result<ProfileList, CommandError> {
    state.console().await?.set_active_profile(args).await
}

#[tauri::command]
pub async fn keyring_status(state: State<'_, AppState>) -> Result<KeyringStatus, CommandError> {
    state.console().await?.keyring_status().await
}

#[tauri::command]
pub async fn get_permissions(state: State<'_, AppState>) -> Result<Permissions, CommandError> {
    state.console().await?.get_permissions().await
}

#[tauri::command]
pub async fn get_settings(state: State<'_, AppState>) -> Result<Settings, CommandError> {
    state.console().await?.get_settings().await
}

#[tauri::command]
pub async fn update_settings(
    state: State<'_, AppState>,
    args: Settings,
) -> Result<Settings, CommandError> {
    state.console().await?.update_settings(args).await
}

#[tauri::command]
pub async fn get_overview(
    state: State<'_, AppState>,
    args: OverviewArgs,
) -> Result<Overview, CommandError> {
    state.console().await?.get_overview(args).await
}

#[tauri::command]
pub async fn get_charts(
    state: State<'_, AppState>,
    args: ChartArgs,
) -> Result<Vec<Chart>, CommandError> {
    state.console().await?.get_charts(args).await
}

#[tauri::command]
pub async fn list_workflows(state: State<'_, AppState>) -> Result<Vec<String>, CommandError> {
    state.console().await?.list_workflows().await
}

#[tauri::command]
pub async fn list_traces(
    state: State<'_, AppState>,
    args: TraceQuery,
) -> Result<TracePage, CommandError> {
    state.console().await?.list_traces(args).await
}

#[tauri::command]
pub async fn get_trace(
    state: State<'_, AppState>,
    args: TraceIdArgs,
) -> Result<TraceDetail, CommandError> {
    state.console().await?.get_trace(args).await
}

#[tauri::command]
pub async fn list_approvals(
    state: State<'_, AppState>,
    args: ApprovalListArgs,
) -> Result<ApprovalPage, CommandError> {
    state.console().await?.list_approvals(args).await
}

#[tauri::command]
pub async fn get_approval(
    state: State<'_, AppState>,
    args: ApprovalIdArgs,
) -> Result<ApprovalDetail, CommandError> {
    state.console().await?.get_approval(args).await
}

#[tauri::command]
pub async fn decide_approval(
    state: State<'_, AppState>,
    args: DecideArgs,
) -> Result<ApprovalDetail, CommandError> {
    state.console().await?.decide_approval(args).await
}

#[tauri::command]
pub async fn verify_audit(state: State<'_, AppState>) -> Result<AuditStatus, CommandError> {
    state.console().await?.verify_audit().await
}

#[tauri::command]
pub async fn list_eval_suites(state: State<'_, AppState>) -> Result<Vec<EvalSuite>, CommandError> {
    state.console().await?.list_eval_suites().await
}

#[tauri::command]
pub async fn list_eval_runs(
    state: State<'_, AppState>,
) -> Result<Vec<EvalRunSummary>, CommandError> {
    state.console().await?.list_eval_runs().await
}

#[tauri::command]
pub async fn get_eval_run(
    state: State<'_, AppState>,
    args: EvalRunIdArgs,
) -> Result<EvalRunDetail, CommandError> {
    state.console().await?.get_eval_run(args).await
}

#[tauri::command]
pub async fn start_eval(
    state: State<'_, AppState>,
    args: StartEvalArgs,
) -> Result<EvalRunSummary, CommandError> {
    state.console().await?.start_eval(args).await
}

#[tauri::command]
pub async fn eval_pass_rates(
    state: State<'_, AppState>,
) -> Result<Vec<PassRatePoint>, CommandError> {
    state.console().await?.eval_pass_rates().await
}

#[tauri::command]
pub async fn discover_ollama(state: State<'_, AppState>) -> Result<OllamaStatus, CommandError> {
    state.console().await?.discover_ollama().await
}

#[tauri::command]
pub async fn list_models(state: State<'_, AppState>) -> Result<Vec<OllamaModel>, CommandError> {
    state.console().await?.list_models().await
}

#[tauri::command]
pub async fn pull_model(
    state: State<'_, AppState>,
    args: PullModelArgs,
) -> Result<OllamaModel, CommandError> {
    state.console().await?.pull_model(args).await
}

#[tauri::command]
pub async fn run_smoke(
    state: State<'_, AppState>,
    args: RunSmokeArgs,
) -> Result<SmokeReport, CommandError> {
    state.console().await?.run_smoke(args).await
}

#[tauri::command]
pub async fn list_smoke_runs(
    state: State<'_, AppState>,
) -> Result<Vec<SmokeRunSummary>, CommandError> {
    state.console().await?.list_smoke_runs().await
}

#[tauri::command]
pub async fn get_smoke_report(
    state: State<'_, AppState>,
    args: SmokeRunIdArgs,
) -> Result<SmokeReport, CommandError> {
    state.console().await?.get_smoke_report(args).await
}

#[tauri::command]
pub async fn export_smoke_report(
    state: State<'_, AppState>,
    args: ExportSmokeArgs,
) -> Result<ExportedFile, CommandError> {
    state.console().await?.export_smoke_report(args).await
}

#[tauri::command]
pub async fn get_freeze_state(state: State<'_, AppState>) -> Result<FreezeState, CommandError> {
    state.console().await?.get_freeze_state().await
}

#[tauri::command]
pub async fn incident_switch(
    state: State<'_, AppState>,
    args: IncidentArgs,
) -> Result<IncidentResult, CommandError> {
    state.console().await?.incident_switch(args).await
}

#[tauri::command]
pub async fn unfreeze_writes(
    state: State<'_, AppState>,
    args: IncidentArgs,
) -> Result<FreezeState, CommandError> {
    state.console().await?.unfreeze_writes(args).await
}

#[tauri::command]
pub async fn notify(state: State<'_, AppState>, args: NotifyArgs) -> Result<(), CommandError> {
    state.console().await?.notify(args).await
}

// --- releases (the Releases view; `release_event` / `release_progress` go through the
// same `EventSink` by name) -----------------------------------------------------------

#[tauri::command]
pub async fn list_kube_contexts(
    state: State<'_, AppState>,
) -> Result<Vec<rd::KubeContext>, CommandError> {
    state.console().await?.list_kube_contexts().await
}

#[tauri::command]
pub async fn link_kube_profile(
    state: State<'_, AppState>,
    args: rd::LinkKubeProfileArgs,
) -> Result<ProfileList, CommandError> {
    state.console().await?.link_kube_profile(args).await
}

#[tauri::command]
pub async fn add_kube_profile(
    state: State<'_, AppState>,
    args: rd::AddKubeProfileArgs,
) -> Result<Profile, CommandError> {
    state.console().await?.add_kube_profile(args).await
}

#[tauri::command]
pub async fn list_releases(state: State<'_, AppState>) -> Result<rd::ReleaseList, CommandError> {
    state.console().await?.list_releases().await
}

#[tauri::command]
pub async fn get_release(
    state: State<'_, AppState>,
    args: rd::ReleaseRefArgs,
) -> Result<rd::ReleaseDetail, CommandError> {
    state.console().await?.get_release(args).await
}

#[tauri::command]
pub async fn promote_release(
    state: State<'_, AppState>,
    args: rd::PromoteArgs,
) -> Result<rd::ReleaseActionResult, CommandError> {
    state.console().await?.promote_release(args).await
}

#[tauri::command]
pub async fn abort_release(
    state: State<'_, AppState>,
    args: rd::ReleaseReasonArgs,
) -> Result<rd::ReleaseActionResult, CommandError> {
    state.console().await?.abort_release(args).await
}

#[tauri::command]
pub async fn undo_release(
    state: State<'_, AppState>,
    args: rd::UndoArgs,
) -> Result<rd::ReleaseActionResult, CommandError> {
    state.console().await?.undo_release(args).await
}

#[tauri::command]
pub async fn pause_release(
    state: State<'_, AppState>,
    args: rd::ReleaseReasonArgs,
) -> Result<rd::ReleaseActionResult, CommandError> {
    state.console().await?.pause_release(args).await
}

#[tauri::command]
pub async fn resume_release(
    state: State<'_, AppState>,
    args: rd::ReleaseReasonArgs,
) -> Result<rd::ReleaseActionResult, CommandError> {
    state.console().await?.resume_release(args).await
}
