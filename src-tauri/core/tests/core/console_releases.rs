//! Releases wired into the console (`Console`'s release commands, `release_event`,
//! `release_progress`, the analysis tick, the incident switch) against the fake Kubernetes
//! API server with real agent-service processes behind the pods.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flightdeck_core::clock::SystemClock;
use flightdeck_core::console::dto::{
    AddAgentProfileArgs, CommandErrorCode, IncidentArgs, Profile, ProfileIdArgs, ProfileKind,
};
use flightdeck_core::console::{Console, ConsoleOptions};
use flightdeck_core::host::Host;
use flightdeck_core::releases::cluster::KubeconfigSource;
use flightdeck_core::releases::dto::*;

use crate::helpers::within;
use crate::rig::{APP, NS, Recorder, TempDir, backends, cluster, release_options};

async fn console(dir: &TempDir, kubeconfigs: Vec<PathBuf>, sink: Arc<Recorder>) -> Console {
    let host = Host::in_memory(Arc::new(SystemClock)).await.unwrap();
    within(
        30,
        "the console",
        Console::start(
            host,
            sink,
            ConsoleOptions {
                scrape_interval: Duration::from_millis(400),
                kubeconfig: KubeconfigSource::Paths(kubeconfigs),
                // The tick must not pause the canary itself before the incident switch does.
                releases: release_options(10_000),
                ..ConsoleOptions::new(dir.0.join("data"))
            },
        ),
    )
    .await
    .unwrap()
}

fn add_kube(name: &str, context: &str) -> AddKubeProfileArgs {
    AddKubeProfileArgs {
        name: name.into(),
        context: context.into(),
        namespace: NS.into(),
        agent_profile_id: None,
    }
}

/// Adds `svc` as an agent-service profile with its admin key (the first one becomes active).
async fn add_agent(console: &Console, name: &str, svc: &testkit::AgentService) -> Profile {
    console
        .add_agent_profile(AddAgentProfileArgs {
            name: name.into(),
            url: svc.base_url().into(),
            api_key: svc.key("admin").into(),
        })
        .await
        .unwrap()
}

fn rref(profile_id: &str) -> ReleaseRef {
    ReleaseRef {
        profile_id: profile_id.into(),
        namespace: NS.into(),
        name: APP.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_releases_list_promote_events_and_the_analysis_tick() {
    let dir = TempDir::new("fd-console-releases");
    let (kube, kc) = cluster(&dir, "fake", false, 5).await;
    let (_stable, _canary) = backends(&kube, &[]).await;
    let sink = Arc::new(Recorder::default());
    let console = console(&dir, vec![kc], sink.clone()).await;

    let contexts = console.list_kube_contexts().await.unwrap();
    assert_eq!(contexts.len(), 1);
    assert_eq!(contexts[0].name, "fake");
    let unknown = console
        .add_kube_profile(add_kube("Nope", "nope"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code, CommandErrorCode::Invalid, "{unknown:?}");
    let profile = console
        .add_kube_profile(add_kube("Fake cluster", "fake"))
        .await
        .unwrap();
    assert_eq!(profile.kind, ProfileKind::Kubernetes);
    assert_eq!(profile.context.as_deref(), Some("fake"));
    assert_eq!(profile.namespace.as_deref(), Some(NS));
    let listed = console.list_profiles().await.unwrap();
    assert!(listed.profiles.iter().any(|p| p.id == profile.id));

    let list = console.list_releases().await.unwrap();
    assert!(list.errors.is_empty(), "{:?}", list.errors);
    assert_eq!(list.releases.len(), 1);
    let s = &list.releases[0];
    assert_eq!(s.release, rref(&profile.id));
    assert_eq!(s.cluster, "Fake cluster");
    assert_eq!(s.state, ReleaseState::WaitingDecision);
    // The watch started with the profile pushes the release once.
    let first = sink
        .wait_for(10, "release_event", |e| e["ref"]["name"] == APP)
        .await;
    assert_eq!(first["ref"]["profile_id"], profile.id.as_str());
    assert_eq!(first["step"], 0);

    // An action needs a reason, and says so as a typed error.
    let blank = console
        .promote_release(PromoteArgs {
            release: rref(&profile.id),
            full: false,
            reason: " ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(blank.code, CommandErrorCode::Invalid, "{blank:?}");

    let r = within(
        60,
        "promote",
        console.promote_release(PromoteArgs {
            release: rref(&profile.id),
            full: false,
            reason: "metrics look good".into(),
        }),
    )
    .await
    .unwrap();
    assert_eq!(r.detail.summary.step, 1, "{}", r.message);
    let progress = sink.of("release_progress");
    assert!(!progress.is_empty());
    assert!(progress.iter().all(|p| p["ref"]["name"] == APP));
    assert!(
        progress
            .iter()
            .any(|p| p["action"] == "promote_step" && p["done"] == true && p["error"].is_null()),
        "{progress:?}"
    );
    sink.wait_for(10, "release_event", |e| {
        e["step"] == 1 && e["actual_weight"] == 10
    })
    .await;

    // The periodic analysis tick judges the canary now that it has a pod: its verdict
    // arrives as a release_event (too few samples yet: inconclusive).
    let judged = sink
        .wait_for(20, "release_event", |e| !e["verdict"].is_null())
        .await;
    assert_eq!(judged["verdict"], "inconclusive", "{judged}");
    let detail = console
        .get_release(ReleaseRefArgs {
            release: rref(&profile.id),
        })
        .await
        .unwrap();
    assert_eq!(detail.summary.verdict, Some(Verdict::Inconclusive));
    assert!(detail.analysis.is_some());

    // A removed profile is no longer listed (and its watch stops).
    console
        .remove_profile(ProfileIdArgs {
            profile_id: profile.id.clone(),
        })
        .await
        .unwrap();
    assert!(console.list_releases().await.unwrap().releases.is_empty());
    console.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_releases_incident_switch_pauses_the_linked_canary() {
    let dir = TempDir::new("fd-console-releases");
    let (kube, kc) = cluster(&dir, "fake", false, 5).await;
    let (stable, canary) = backends(&kube, &[]).await;
    let sink = Arc::new(Recorder::default());
    let console = console(&dir, vec![kc], sink.clone()).await;

    // Without an agent-service profile there is nothing to freeze.
    let none = console
        .incident_switch(IncidentArgs {
            reason: "p99 over 30 s".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(none.code, CommandErrorCode::Invalid, "{none:?}");

    // The active agent-service profile: the service the cluster runs (its canary here).
    let agent = add_agent(&console, "Prod service", &canary).await;
    assert_eq!(
        console.list_profiles().await.unwrap().active_id.as_deref(),
        Some(agent.id.as_str())
    );
    let kp = console
        .add_kube_profile(add_kube("Prod cluster", "fake"))
        .await
        .unwrap();
    within(
        60,
        "promote",
        console.promote_release(PromoteArgs {
            release: rref(&kp.id),
            full: false,
            reason: "first step".into(),
        }),
    )
    .await
    .unwrap();

    let incident = console
        .incident_switch(IncidentArgs {
            reason: "p99 over 30 s on prod".into(),
        })
        .await
        .unwrap();
    assert!(incident.freeze.frozen);
    assert_eq!(incident.rollouts_paused, 1);
    let c = kube.deployment(NS, &format!("{APP}-canary")).unwrap();
    let ann = &c["metadata"]["annotations"];
    assert_eq!(ann["flightdeck.dev/paused"], "true");
    assert_eq!(ann["flightdeck.dev/paused-reason"], "p99 over 30 s on prod");
    // Paused, not aborted: the canary keeps its step and its pod.
    assert_eq!(ann["flightdeck.dev/canary-step"], "1");
    assert_eq!(c["spec"]["replicas"], 1);
    let s = &console.list_releases().await.unwrap().releases[0];
    assert_eq!(s.state, ReleaseState::Paused);
    sink.wait_for(10, "release_event", |e| e["state"] == "paused")
        .await;

    // An already paused canary is not paused (nor counted) again.
    let again = console
        .incident_switch(IncidentArgs {
            reason: "still slow".into(),
        })
        .await
        .unwrap();
    assert_eq!(again.rollouts_paused, 0);

    // Another service becomes active: the cluster is re-linked to it, so its incident
    // switch pauses the (resumed) canary.
    let other = add_agent(&console, "Staging service", &stable).await;
    console
        .set_active_profile(ProfileIdArgs {
            profile_id: other.id.clone(),
        })
        .await
        .unwrap();
    let resumed = console
        .resume_release(ReleaseReasonArgs {
            release: rref(&kp.id),
            reason: "latency back to normal".into(),
        })
        .await
        .unwrap();
    assert_ne!(resumed.detail.summary.state, ReleaseState::Paused);
    let third = console
        .incident_switch(IncidentArgs {
            reason: "errors on staging".into(),
        })
        .await
        .unwrap();
    assert_eq!(third.rollouts_paused, 1);
    let c = kube.deployment(NS, &format!("{APP}-canary")).unwrap();
    assert_eq!(
        c["metadata"]["annotations"]["flightdeck.dev/paused-reason"],
        "errors on staging"
    );
    console.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_releases_an_unreachable_cluster_is_a_cluster_error_others_still_list() {
    let dir = TempDir::new("fd-console-releases");
    let (up, kc_up) = cluster(&dir, "up", false, 5).await;
    let (down, kc_down) = cluster(&dir, "down", false, 5).await;
    let sink = Arc::new(Recorder::default());
    let console = console(&dir, vec![kc_up, kc_down], sink.clone()).await;
    let contexts = console.list_kube_contexts().await.unwrap();
    assert_eq!(contexts.len(), 2, "{contexts:?}");
    let a = console
        .add_kube_profile(add_kube("Up", "up"))
        .await
        .unwrap();
    let b = console
        .add_kube_profile(add_kube("Down", "down"))
        .await
        .unwrap();
    assert_eq!(console.list_releases().await.unwrap().releases.len(), 2);
    down.stop().await.unwrap();

    let list = within(10, "list_releases", console.list_releases())
        .await
        .unwrap();
    assert_eq!(list.releases.len(), 1, "{list:?}");
    assert_eq!(list.releases[0].release.profile_id, a.id);
    assert_eq!(list.errors.len(), 1, "{list:?}");
    assert_eq!(list.errors[0].profile_id, b.id);
    assert_eq!(list.errors[0].cluster, "Down");
    assert!(
        list.errors[0]
            .message
            .contains("could not reach cluster Down"),
        "{}",
        list.errors[0].message
    );
    let e = console
        .get_release(ReleaseRefArgs {
            release: rref(&b.id),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.code,
            CommandErrorCode::Network | CommandErrorCode::Timeout
        ),
        "{e:?}"
    );
    drop(up);
    console.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_releases_a_cluster_linked_to_a_named_service_stays_linked() {
    let dir = TempDir::new("fd-console-links");
    let (kube, kc) = cluster(&dir, "fake", false, 5).await;
    let (stable, canary) = backends(&kube, &[]).await;
    let sink = Arc::new(Recorder::default());
    let console = console(&dir, vec![kc], sink.clone()).await;
    let prod = add_agent(&console, "Prod service", &canary).await;
    let staging = add_agent(&console, "Staging service", &stable).await;
    console
        .set_active_profile(ProfileIdArgs {
            profile_id: staging.id.clone(),
        })
        .await
        .unwrap();

    // Only a stored agent-service profile can be named, and nothing is saved otherwise.
    for bad in ["local", "nope", "Not An Id!"] {
        let e = console
            .add_kube_profile(AddKubeProfileArgs {
                agent_profile_id: Some(bad.into()),
                ..add_kube(&format!("Bad {bad}"), "fake")
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, CommandErrorCode::Invalid, "{bad}: {e:?}");
    }
    let kubes = || async {
        console
            .list_profiles()
            .await
            .unwrap()
            .profiles
            .into_iter()
            .filter(|p| p.kind == ProfileKind::Kubernetes)
            .collect::<Vec<_>>()
    };
    assert!(kubes().await.is_empty(), "refused profiles are not saved");

    let kp = console
        .add_kube_profile(AddKubeProfileArgs {
            agent_profile_id: Some(prod.id.clone()),
            ..add_kube("Prod cluster", "fake")
        })
        .await
        .unwrap();
    assert_eq!(kp.agent_profile_id.as_deref(), Some(prod.id.as_str()));
    assert_eq!(
        kubes().await[0].agent_profile_id.as_deref(),
        Some(prod.id.as_str())
    );
    within(
        60,
        "promote",
        console.promote_release(PromoteArgs {
            release: rref(&kp.id),
            full: false,
            reason: "first step".into(),
        }),
    )
    .await
    .unwrap();
    // The active service is staging: its incident switch does not touch prod's canary.
    let on_staging = console
        .incident_switch(IncidentArgs {
            reason: "errors on staging".into(),
        })
        .await
        .unwrap();
    assert_eq!(on_staging.rollouts_paused, 0);
    console
        .set_active_profile(ProfileIdArgs {
            profile_id: prod.id.clone(),
        })
        .await
        .unwrap();
    let on_prod = console
        .incident_switch(IncidentArgs {
            reason: "errors on prod".into(),
        })
        .await
        .unwrap();
    assert_eq!(on_prod.rollouts_paused, 1);

    // Re-linked to staging while prod stays active: staging's switch now pauses it.
    console
        .resume_release(ReleaseReasonArgs {
            release: rref(&kp.id),
            reason: "recovered".into(),
        })
        .await
        .unwrap();
    let list = console
        .link_kube_profile(LinkKubeProfileArgs {
            profile_id: kp.id.clone(),
            agent_profile_id: Some(staging.id.clone()),
        })
        .await
        .unwrap();
    let linked = list.profiles.iter().find(|p| p.id == kp.id).unwrap();
    assert_eq!(
        linked.agent_profile_id.as_deref(),
        Some(staging.id.as_str())
    );
    assert_eq!(
        console.list_profiles().await.unwrap().active_id.as_deref(),
        Some(prod.id.as_str())
    );
    console
        .set_active_profile(ProfileIdArgs {
            profile_id: staging.id.clone(),
        })
        .await
        .unwrap();
    let relinked = console
        .incident_switch(IncidentArgs {
            reason: "staging again".into(),
        })
        .await
        .unwrap();
    assert_eq!(relinked.rollouts_paused, 1);
    // Bad re-links change nothing.
    for (profile, agent) in [
        ("nope", Some(prod.id.clone())),
        (kp.id.as_str(), Some("local".into())),
        (prod.id.as_str(), None),
    ] {
        let e = console
            .link_kube_profile(LinkKubeProfileArgs {
                profile_id: profile.into(),
                agent_profile_id: agent,
            })
            .await
            .unwrap_err();
        assert!(
            matches!(
                e.code,
                CommandErrorCode::Invalid | CommandErrorCode::NotFound
            ),
            "{profile}: {e:?}"
        );
    }
    assert_eq!(
        kubes().await[0].agent_profile_id.as_deref(),
        Some(staging.id.as_str())
    );
    // Back to prod for the removal below.
    console
        .link_kube_profile(LinkKubeProfileArgs {
            profile_id: kp.id.clone(),
            agent_profile_id: Some(prod.id.clone()),
        })
        .await
        .unwrap();

    // The named service removed: the cluster follows the active profile again.
    console
        .remove_profile(ProfileIdArgs {
            profile_id: prod.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(kubes().await[0].agent_profile_id, None);
    console.shutdown().await;
}
