//! The fake Kubernetes API server against the real `kube` client (kube 5, k8s-openapi 0.29):
//! auth through kubeconfigs, the deployment controller, conflicts, scale, patch types,
//! selectors, watch, SSAR + policy, Events, the pod proxy, faults, and the binary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use testkit::fake_kube::{FakeKube, KubeconfigOpts, Policy, PolicyRule};

const NS: &str = "shop";

/// A temporary directory for one test's files, removed when dropped.
fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("fake-kube-test-")
        .tempdir()
        .expect("temp dir")
}

/// A client from a kubeconfig the fake writes, and the directory holding that kubeconfig:
/// an exec-plugin user runs the script beside it for every token, so keep it while the
/// client is in use.
async fn client_with(
    fake: &FakeKube,
    opts: &KubeconfigOpts,
) -> (tempfile::TempDir, kube::Result<Client>) {
    let dir = temp_dir();
    let path = dir.path().join("kubeconfig");
    fake.write_kubeconfig(&path, opts)
        .expect("kubeconfig written");
    let kc = Kubeconfig::read_from(&path).expect("kubeconfig readable by kube");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kube config");
    (dir, Client::try_from(config))
}

/// A client without kube's default retry of 429/503/504 (it backs off for minutes).
async fn client_no_retry(fake: &FakeKube) -> Client {
    // A token user: nothing is read from the kubeconfig's directory after this.
    let dir = temp_dir();
    let path = dir.path().join("kubeconfig");
    fake.write_kubeconfig(&path, &KubeconfigOpts::default())
        .expect("kubeconfig written");
    let kc = Kubeconfig::read_from(&path).expect("kubeconfig readable by kube");
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kube config");
    config.default_retry = false;
    Client::try_from(config).expect("client")
}

/// A client with the fake's bearer token (its kubeconfig is not needed after this).
async fn client(fake: &FakeKube) -> Client {
    client_with(fake, &KubeconfigOpts::default())
        .await
        .1
        .expect("client")
}

fn deployment(name: &str, track: &str, image: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS,
                     "labels": {"app.kubernetes.io/name": "web", "track": track},
                     "annotations": {"kubernetes.io/change-cause": format!("deploy {image}")}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "web", "track": track}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "web", "track": track}},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 8080}]}]},
            },
        },
    })
}

async fn started_with_web() -> (FakeKube, Client) {
    let fake = FakeKube::start().await;
    fake.apply_value(deployment("web", "stable", "web:1", 2))
        .expect("applied");
    fake.apply_value(deployment("web-canary", "canary", "web:2", 1))
        .expect("applied");
    let c = client(&fake).await;
    (fake, c)
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn revision(d: &Deployment) -> Option<String> {
    d.metadata
        .annotations
        .as_ref()?
        .get("deployment.kubernetes.io/revision")
        .cloned()
}

#[tokio::test]
async fn fake_kube_token_and_exec_kubeconfigs_authenticate() {
    let fake = FakeKube::start().await;
    let (_token_dir, token) = client_with(&fake, &KubeconfigOpts::default()).await;
    let token = token.unwrap();
    let names: Vec<String> = Api::<Namespace>::all(token)
        .list(&ListParams::default())
        .await
        .expect("listed with the token")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(names, ["default", "kube-system"]);

    let (_exec_dir, exec) = client_with(
        &fake,
        &KubeconfigOpts {
            exec: true,
            namespace: Some(NS.into()),
            ..KubeconfigOpts::default()
        },
    )
    .await;
    let exec = exec.unwrap();
    let v = exec.apiserver_version().await.expect("version");
    assert_eq!(v.major, "1");
    Api::<Namespace>::all(exec.clone())
        .get("default")
        .await
        .expect("exec credential accepted");
    assert_eq!(exec.default_namespace(), NS);
    let header = fake.request_log().last().cloned().expect("logged");
    assert_eq!(header.status, 200);

    let (_wrong_dir, wrong) = client_with(
        &fake,
        &KubeconfigOpts {
            token: Some("not-the-token".into()),
            ..KubeconfigOpts::default()
        },
    )
    .await;
    let wrong = wrong.unwrap();
    let err = api_error(
        Api::<Namespace>::all(wrong)
            .get("default")
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 401);
    assert_eq!(err.reason, "Unauthorized");
}

#[tokio::test]
async fn fake_kube_deployment_controller_rolls_out_and_back() {
    let (fake, c) = started_with_web().await;
    let deps: Api<Deployment> = Api::namespaced(c.clone(), NS);
    let rss: Api<ReplicaSet> = Api::namespaced(c.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(c.clone(), NS);

    let d = deps.get("web").await.unwrap();
    let st = d.status.clone().unwrap();
    assert_eq!(
        (st.replicas, st.ready_replicas, st.updated_replicas),
        (Some(2), Some(2), Some(2))
    );
    assert_eq!(st.observed_generation, d.metadata.generation);
    assert_eq!(revision(&d).as_deref(), Some("1"));
    assert!(d.metadata.uid.is_some() && d.metadata.creation_timestamp.is_some());

    let lp = ListParams::default().labels("track=stable");
    let first = rss.list(&lp).await.unwrap().items;
    assert_eq!(first.len(), 1);
    let rs1 = &first[0];
    let hash = rs1.metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
    assert_eq!(
        rs1.metadata.name.as_deref(),
        Some(format!("web-{hash}").as_str())
    );
    assert_eq!(
        rs1.metadata.owner_references.as_ref().unwrap()[0].uid,
        d.metadata.uid.clone().unwrap()
    );
    assert_eq!(
        rs1.metadata.annotations.as_ref().unwrap()["kubernetes.io/change-cause"],
        "deploy web:1"
    );
    let ps = pods.list(&lp).await.unwrap().items;
    assert_eq!(ps.len(), 2);
    for p in &ps {
        assert_eq!(
            p.metadata.labels.as_ref().unwrap()["pod-template-hash"],
            hash
        );
        assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Running"));
    }

    // A new image: a new ReplicaSet at revision 2, the old one scaled to 0.
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "web:3"}]}}}});
    let d2 = deps
        .patch("web", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    assert_eq!(d2.metadata.generation, Some(2));
    let d2 = deps.get("web").await.unwrap();
    assert_eq!(revision(&d2).as_deref(), Some("2"));
    let all = rss.list(&lp).await.unwrap().items;
    assert_eq!(all.len(), 2);
    let replicas: BTreeMap<String, i32> = all
        .iter()
        .map(|r| (r.metadata.name.clone().unwrap(), r.spec.replicas.unwrap()))
        .collect();
    assert_eq!(replicas[&format!("web-{hash}")], 0);
    let ps = pods.list(&lp).await.unwrap().items;
    assert_eq!(ps.len(), 2);
    assert!(
        ps.iter()
            .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("web:3"))
    );

    // Back to the first template: the old ReplicaSet is reused as revision 3.
    let back = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "web:1"}]}}}});
    deps.patch("web", &PatchParams::default(), &Patch::Strategic(back))
        .await
        .unwrap();
    let d3 = deps.get("web").await.unwrap();
    assert_eq!(revision(&d3).as_deref(), Some("3"));
    assert_eq!(rss.list(&lp).await.unwrap().items.len(), 2);
    let rs1 = rss.get(&format!("web-{hash}")).await.unwrap();
    assert_eq!(rs1.spec.replicas, Some(2));
    assert_eq!(
        rs1.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "3"
    );

    let events = fake.events(NS);
    assert!(
        events.iter().any(|e| e["reason"] == "ScalingReplicaSet"
            && e["involvedObject"]["name"] == "web"
            && e["message"] == format!("Scaled down replica set web-{hash} from 2 to 0")),
        "{events:#?}"
    );

    // Paused: a template change makes no new ReplicaSet.
    deps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"paused": true}})),
    )
    .await
    .unwrap();
    let img = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "web:9"}]}}}});
    deps.patch("web", &PatchParams::default(), &Patch::Strategic(img))
        .await
        .unwrap();
    assert_eq!(rss.list(&lp).await.unwrap().items.len(), 2);
    let d = deps.get("web").await.unwrap();
    let cond = d.status.unwrap().conditions.unwrap();
    assert!(
        cond.iter()
            .any(|c| c.type_.as_deref() == Some("Progressing")
                && c.reason.as_deref() == Some("DeploymentPaused"))
    );
    deps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"paused": false}})),
    )
    .await
    .unwrap();
    assert_eq!(rss.list(&lp).await.unwrap().items.len(), 3);

    // Deleting the Deployment takes its ReplicaSets and pods along.
    deps.delete("web", &Default::default()).await.unwrap();
    assert!(rss.list(&lp).await.unwrap().items.is_empty());
    assert!(pods.list(&lp).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn fake_kube_stale_update_gets_409_status() {
    let (fake, c) = started_with_web().await;
    let deps: Api<Deployment> = Api::namespaced(c, NS);
    let stale = deps.get("web").await.unwrap();
    let mut fresh = stale.clone();
    fresh
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("tier".into(), "gold".into());
    let updated = deps
        .replace("web", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version,
        stale.metadata.resource_version
    );

    let err = api_error(
        deps.replace("web", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    assert_eq!(err.reason, "Conflict");
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; \
         please apply your changes to the latest version and try again"
    );
    let details = err.details.unwrap();
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("web", "apps", "deployments")
    );
    let log = fake.request_log();
    let puts: Vec<u16> = log
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.status)
        .collect();
    assert_eq!(puts, [200, 409]);

    // A no-op replace keeps the resourceVersion.
    let again = deps
        .replace("web", &PostParams::default(), &updated)
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        updated.metadata.resource_version
    );
}

#[tokio::test]
async fn fake_kube_scale_subresource_drives_pods() {
    let (fake, c) = started_with_web().await;
    let deps: Api<Deployment> = Api::namespaced(c, NS);
    let scale = deps.get_scale("web-canary").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(1));
    assert_eq!(
        scale.status.as_ref().unwrap().selector.as_deref(),
        Some("app.kubernetes.io/name=web,track=canary")
    );

    let s = deps
        .patch_scale(
            "web-canary",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(s.spec.unwrap().replicas, Some(3));
    assert_eq!(fake.pods(NS, &[("track", "canary")]).len(), 3);
    let d = deps.get("web-canary").await.unwrap();
    assert_eq!(d.status.as_ref().unwrap().ready_replicas, Some(3));
    assert_eq!(
        revision(&d).as_deref(),
        Some("1"),
        "scaling is no new revision"
    );

    let mut stale = scale.clone();
    stale.spec = Some(k8s_openapi::api::autoscaling::v1::ScaleSpec { replicas: Some(0) });
    let err = api_error(
        deps.replace_scale("web-canary", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 409);

    let mut now = deps.get_scale("web-canary").await.unwrap();
    now.spec = Some(k8s_openapi::api::autoscaling::v1::ScaleSpec { replicas: Some(0) });
    deps.replace_scale("web-canary", &PostParams::default(), &now)
        .await
        .unwrap();
    assert!(fake.pods(NS, &[("track", "canary")]).is_empty());
    let d = deps.get("web-canary").await.unwrap();
    assert_eq!(
        d.status.unwrap().ready_replicas,
        None,
        "zero counts are omitted like the API server does"
    );

    let err = api_error(
        deps.patch_scale(
            "web-canary",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
}

#[tokio::test]
async fn fake_kube_patch_types_and_bad_input() {
    let (_fake, c) = started_with_web().await;
    let deps: Api<Deployment> = Api::namespaced(c.clone(), NS);
    let pp = PatchParams::default();
    let d = deps
        .patch(
            "web",
            &pp,
            &Patch::Merge(
                json!({"metadata": {"annotations": {"flightdeck.dev/canary-step": "2"}}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        d.metadata.annotations.as_ref().unwrap()["flightdeck.dev/canary-step"],
        "2"
    );
    assert_eq!(
        d.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );

    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/replicas", "value": 4}
    ]))
    .unwrap();
    let d = deps
        .patch("web", &pp, &Patch::<()>::Json(jp))
        .await
        .unwrap();
    assert_eq!(d.spec.replicas, Some(4));

    // A stale resourceVersion in a patch is a precondition that fails.
    let err = api_error(
        deps.patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 1}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 409);

    let err = api_error(
        deps.patch(
            "web",
            &PatchParams::apply("test"),
            &Patch::Apply(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.reason.as_str()),
        (415, "UnsupportedMediaType")
    );

    let err = api_error(
        deps.patch(
            "web",
            &pp,
            &Patch::Merge(json!({"spec": {"replicas": "three"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));

    let mut bad = deployment("broken", "stable", "web:1", 1);
    bad["spec"]["template"]["metadata"]["labels"]["track"] = json!("other");
    let bad: Deployment = serde_json::from_value(bad).unwrap();
    let err = api_error(deps.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message
            .contains("`selector` does not match template `labels`"),
        "{}",
        err.message
    );
    assert_eq!(
        err.details.unwrap().causes[0].field,
        "spec.template.metadata.labels"
    );

    let err = api_error(deps.get("nope").await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert_eq!(err.message, "deployments.apps \"nope\" not found");

    let dup: Deployment = serde_json::from_value(deployment("web", "stable", "web:1", 1)).unwrap();
    let err = api_error(deps.create(&PostParams::default(), &dup).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));

    let elsewhere: Api<Deployment> = Api::namespaced(c, "missing-ns");
    let mut d = dup.clone();
    d.metadata.namespace = None;
    let err = api_error(
        elsewhere
            .create(&PostParams::default(), &d)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 404);
    assert_eq!(err.message, "namespaces \"missing-ns\" not found");
}

#[tokio::test]
async fn fake_kube_list_selectors() {
    let (_fake, c) = started_with_web().await;
    let deps: Api<Deployment> = Api::namespaced(c.clone(), NS);
    let names = |l: kube::core::ObjectList<Deployment>| -> Vec<String> {
        l.items
            .into_iter()
            .filter_map(|d| d.metadata.name)
            .collect()
    };
    assert_eq!(
        names(
            deps.list(&ListParams::default().labels("track in (canary)"))
                .await
                .unwrap()
        ),
        ["web-canary"]
    );
    assert_eq!(
        names(
            deps.list(&ListParams::default().labels("track!=canary"))
                .await
                .unwrap()
        ),
        ["web"]
    );
    assert_eq!(
        names(
            deps.list(&ListParams::default().labels("app.kubernetes.io/name=web"))
                .await
                .unwrap()
        ),
        ["web", "web-canary"]
    );
    assert_eq!(
        names(
            deps.list(&ListParams::default().fields("metadata.name=web"))
                .await
                .unwrap()
        ),
        ["web"]
    );
    let list = deps.list(&ListParams::default()).await.unwrap();
    assert!(
        list.metadata
            .resource_version
            .is_some_and(|rv| rv.parse::<u64>().is_ok())
    );
    let all: Api<Deployment> = Api::all(c);
    assert_eq!(
        names(all.list(&ListParams::default()).await.unwrap()).len(),
        2
    );
    let err = api_error(
        deps.list(&ListParams::default().labels("track in canary"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 400);
    let err = api_error(
        deps.list(&ListParams::default().fields("spec.replicas=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 400);
}

#[tokio::test]
async fn fake_kube_watch_streams_changes_bookmarks_and_gone() {
    let (fake, c) = started_with_web().await;
    fake.set_bookmark_interval(Duration::from_millis(100));
    let deps: Api<Deployment> = Api::namespaced(c.clone(), NS);
    let list = deps
        .list(&ListParams::default().labels("track=canary"))
        .await
        .unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let wp = WatchParams::default().labels("track=canary").timeout(10);
    let mut stream = deps.watch(&wp, &rv).await.unwrap().boxed();
    deps.patch(
        "web-canary",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"flightdeck.dev/canary-step": "1"}}})),
    )
    .await
    .unwrap();
    deps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
    )
    .await
    .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .expect("an event in time")
        .unwrap()
        .expect("stream open");
    match ev {
        WatchEvent::Modified(d) => {
            assert_eq!(d.metadata.name.as_deref(), Some("web-canary"));
            assert_eq!(
                d.metadata.annotations.unwrap()["flightdeck.dev/canary-step"],
                "1"
            );
        }
        other => panic!("expected MODIFIED, got {other:?}"),
    }

    // A selector watch sees an object leave (DELETED) and come back (ADDED).
    let rv = fake.resource_version().to_string();
    let mut stream = deps
        .watch(
            &WatchParams::default().labels("track=canary").timeout(10),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    for track in ["parked", "canary"] {
        deps.patch(
            "web-canary",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"track": track}}})),
        )
        .await
        .unwrap();
    }
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        kinds.push(match ev {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Modified(_) => "MODIFIED",
            _ => "other",
        });
    }
    assert_eq!(kinds, ["DELETED", "ADDED"]);

    // Bookmarks when asked for.
    let wp = WatchParams::default().timeout(5);
    let rv_now = fake.resource_version().to_string();
    let mut stream = deps.watch(&wp, &rv_now).await.unwrap().boxed();
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .expect("a bookmark in time")
        .unwrap()
        .expect("stream open");
    assert!(
        matches!(ev, WatchEvent::Bookmark(ref b) if b.metadata.resource_version == rv_now),
        "{ev:?}"
    );

    // timeoutSeconds ends the stream.
    let rv_now = fake.resource_version().to_string();
    let wp = WatchParams::default().timeout(1).disable_bookmarks();
    let mut short = deps.watch(&wp, &rv_now).await.unwrap().boxed();
    let end = tokio::time::timeout(Duration::from_secs(5), short.try_next())
        .await
        .expect("the watch ends after timeoutSeconds")
        .unwrap();
    assert!(end.is_none(), "{end:?}");

    // A compacted resourceVersion: 410 Gone as an ERROR event.
    fake.compact();
    let mut stream = deps
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }

    // kube's watcher (list + watch) sees the objects and later changes.
    let pods: Api<Pod> = Api::namespaced(c, NS);
    let cfg = kube::runtime::watcher::Config::default().labels("track=canary");
    let mut w = kube::runtime::watcher(pods.clone(), cfg).boxed();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, w.try_next())
        .await
        .map(|r| r.unwrap())
    {
        match ev {
            kube::runtime::watcher::Event::InitApply(p) => seen.push(p.metadata.name.unwrap()),
            kube::runtime::watcher::Event::InitDone => {
                deps.patch_scale(
                    "web-canary",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"replicas": 2}})),
                )
                .await
                .unwrap();
            }
            kube::runtime::watcher::Event::Apply(p) => {
                seen.push(p.metadata.name.unwrap());
                break;
            }
            _ => {}
        }
    }
    assert_eq!(seen.len(), 2, "one initial pod, one added: {seen:?}");
}

#[tokio::test]
async fn fake_kube_interrupted_watches_end_refuse_and_miss_changes_until_resumed() {
    let (fake, _) = started_with_web().await;
    // Without kube's retry of 503s (it would back off for minutes).
    let deps: Api<Deployment> = Api::namespaced(client_no_retry(&fake).await, NS);
    let rv = fake.resource_version().to_string();
    let wp = WatchParams::default().timeout(30).disable_bookmarks();
    let mut open = deps.watch(&wp, &rv).await.unwrap().boxed();

    // Interrupted: the open watch ends without carrying what changes afterwards.
    fake.interrupt_watches();
    assert!(fake.delete("apps/v1", "Deployment", Some(NS), "web-canary"));
    let end = tokio::time::timeout(Duration::from_secs(5), open.try_next())
        .await
        .expect("the interrupted watch ends")
        .unwrap();
    assert!(end.is_none(), "an interrupted watch carried {end:?}");
    // New watches are refused with 503 (lists are served).
    match deps.watch(&wp, &rv).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 503, "{e:?}");
            assert_eq!(e.reason, "ServiceUnavailable");
        }
        Ok(_) => panic!("a watch was served while interrupted"),
        Err(other) => panic!("expected a 503 Status, got {other:?}"),
    }
    let names: Vec<String> = deps
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|d| d.metadata.name)
        .collect();
    assert_eq!(names, ["web"]);

    // Resumed: a watch from the earlier resourceVersion replays the deletion; after a
    // compaction it gets 410 instead (the client must re-list to learn of it).
    fake.resume_watches();
    let mut replay = deps.watch(&wp, &rv).await.unwrap().boxed();
    let ev = tokio::time::timeout(Duration::from_secs(5), replay.try_next())
        .await
        .expect("the replayed deletion in time")
        .unwrap();
    assert!(
        matches!(ev, Some(WatchEvent::Deleted(ref d)) if d.metadata.name.as_deref() == Some("web-canary")),
        "{ev:?}"
    );
    fake.compact();
    let mut gone = deps.watch(&wp, &rv).await.unwrap().boxed();
    match gone.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }

    // The control API does the same for other processes.
    let http = reqwest::Client::new();
    let put = |interrupted: bool| {
        http.put(format!("{}/__fake/watches", fake.url()))
            .json(&json!({ "interrupted": interrupted }))
            .send()
    };
    assert_eq!(put(true).await.unwrap().status(), 204);
    let now = fake.resource_version().to_string();
    assert!(matches!(deps.watch(&wp, &now).await, Err(kube::Error::Api(e)) if e.code == 503));
    assert_eq!(put(false).await.unwrap().status(), 204);
    assert!(deps.watch(&wp, &now).await.is_ok());
    let bad = http
        .put(format!("{}/__fake/watches", fake.url()))
        .json(&json!({ "interupted": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422, "an unknown field is refused");
}

#[tokio::test]
async fn fake_kube_ssar_and_policy_forbid_real_requests() {
    let (fake, c) = started_with_web().await;
    fake.set_policy(
        Policy::allow_all().with_rule(
            PolicyRule::deny("patch", "apps", "deployments")
                .in_namespace(NS)
                .because("release managers only"),
        ),
    );
    let ssar = |verb: &str, sub: Option<&str>| SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(NS.into()),
                verb: Some(verb.into()),
                group: Some("apps".into()),
                resource: Some("deployments".into()),
                subresource: sub.map(str::to_string),
                name: Some("web".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let reviews: Api<SelfSubjectAccessReview> = Api::all(c.clone());
    let denied = reviews
        .create(&PostParams::default(), &ssar("patch", None))
        .await
        .unwrap();
    let st = denied.status.unwrap();
    assert!(!st.allowed);
    assert_eq!(st.denied, Some(true));
    assert_eq!(st.reason.as_deref(), Some("release managers only"));
    let scale = reviews
        .create(&PostParams::default(), &ssar("patch", Some("scale")))
        .await
        .unwrap();
    assert!(!scale.status.unwrap().allowed);
    let get = reviews
        .create(&PostParams::default(), &ssar("get", None))
        .await
        .unwrap();
    assert!(get.status.unwrap().allowed);

    let deps: Api<Deployment> = Api::namespaced(c, NS);
    deps.get("web").await.expect("reading stays allowed");
    let err = api_error(
        deps.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        err.message,
        "deployments.apps \"web\" is forbidden: User \"fake-user\" cannot patch resource \"deployments\" in API \
         group \"apps\" in the namespace \"shop\": release managers only"
    );
    assert_eq!(
        fake.deployment(NS, "web").unwrap()["spec"]["replicas"],
        2,
        "nothing changed"
    );

    fake.set_policy(Policy::read_only());
    let err = api_error(
        deps.patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 403);
    assert!(
        err.message
            .contains("cannot patch resource \"deployments/scale\""),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn fake_kube_events_create_and_list() {
    let (fake, c) = started_with_web().await;
    let events: Api<Event> = Api::namespaced(c, NS);
    let ev: Event = serde_json::from_value(json!({
        "metadata": {"generateName": "web-canary."},
        "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web-canary", "namespace": NS},
        "reason": "CanaryPromoted", "message": "step 1 -> 2 (10% -> 25%)", "type": "Normal",
        "source": {"component": "flightdeck-console"},
    }))
    .unwrap();
    let created = events.create(&PostParams::default(), &ev).await.unwrap();
    assert!(created.metadata.name.unwrap().starts_with("web-canary."));
    let on_canary = events
        .list(&ListParams::default().fields("involvedObject.name=web-canary"))
        .await
        .unwrap()
        .items;
    assert!(
        on_canary
            .iter()
            .any(|e| e.reason.as_deref() == Some("CanaryPromoted"))
    );
    assert!(
        on_canary
            .iter()
            .any(|e| e.reason.as_deref() == Some("ScalingReplicaSet"))
    );
    assert!(
        fake.events(NS)
            .iter()
            .any(|e| e["reason"] == "CanaryPromoted")
    );
}

#[tokio::test]
async fn fake_kube_pod_proxy_reaches_the_backend() {
    use axum::extract::{Query, Request};
    let backend = axum::Router::new().fallback(
        |Query(q): Query<BTreeMap<String, String>>, req: Request| async move {
            axum::Json(
                json!({"path": req.uri().path(), "query": q, "method": req.method().as_str()}),
            )
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, backend).await });

    let (fake, c) = started_with_web().await;
    fake.set_backend(
        NS,
        BTreeMap::from([("track".to_string(), "canary".to_string())]),
        &backend_url,
    );
    let canary = fake.pods(NS, &[("track", "canary")]);
    let pod = canary[0]["metadata"]["name"].as_str().unwrap().to_string();

    let req = axum::http::Request::get(format!(
        "/api/v1/namespaces/{NS}/pods/{pod}:8080/proxy/v1/stats?window=5m"
    ))
    .body(Vec::new())
    .unwrap();
    let body: Value = serde_json::from_str(&c.request_text(req).await.unwrap()).unwrap();
    assert_eq!(body["path"], "/v1/stats");
    assert_eq!(body["query"]["window"], "5m");

    let req = axum::http::Request::post(format!(
        "/api/v1/namespaces/{NS}/pods/http:{pod}:8080/proxy/v1/approvals/cancel"
    ))
    .header("content-type", "application/json")
    .body(b"{}".to_vec())
    .unwrap();
    let body: Value = serde_json::from_str(&c.request_text(req).await.unwrap()).unwrap();
    assert_eq!(
        (body["method"].as_str(), body["path"].as_str()),
        (Some("POST"), Some("/v1/approvals/cancel"))
    );

    // A stable pod has no backend: 503 as a Status (kube would retry it for minutes).
    let c = client_no_retry(&fake).await;
    let stable = fake.pods(NS, &[("track", "stable")]);
    let pod = stable[0]["metadata"]["name"].as_str().unwrap();
    let req = axum::http::Request::get(format!("/api/v1/namespaces/{NS}/pods/{pod}/proxy/healthz"))
        .body(Vec::new())
        .unwrap();
    let err = api_error(c.request_text(req).await.unwrap_err());
    assert_eq!(err.code, 503);

    // Through a Service selecting the canary pods.
    fake.apply_value(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web-canary", "namespace": NS},
        "spec": {"selector": {"track": "canary"}, "ports": [{"port": 80, "targetPort": 8080}]}}))
        .unwrap();
    let req = axum::http::Request::get(format!(
        "/api/v1/namespaces/{NS}/services/web-canary:80/proxy/metrics"
    ))
    .body(Vec::new())
    .unwrap();
    let body: Value = serde_json::from_str(&c.request_text(req).await.unwrap()).unwrap();
    assert_eq!(body["path"], "/metrics");
}

#[tokio::test]
async fn fake_kube_fail_next_latency_ready_delay_and_stop() {
    let (fake, c) = started_with_web().await;
    let deps: Api<Deployment> = Api::namespaced(c.clone(), NS);
    fake.fail_next(
        "PUT",
        &format!("/apis/apps/v1/namespaces/{NS}/deployments/web"),
        1,
        409,
    );
    let d = deps.get("web").await.unwrap();
    let err = api_error(
        deps.replace("web", &PostParams::default(), &d)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    deps.replace("web", &PostParams::default(), &d)
        .await
        .expect("only the next one failed");

    fake.fail_next("*", "/apis/apps/v1", 1, 500);
    let err = api_error(deps.get("web").await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (500, "InternalError"));

    // kube's client retries 503 by itself: one injected 503 is invisible to the caller
    // but shows in the request log.
    fake.clear_request_log();
    fake.fail_next("GET", "/apis/apps/v1", 1, 503);
    deps.get("web").await.expect("retried after the 503");
    let statuses: Vec<u16> = fake.request_log().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 200]);

    fake.set_latency(Duration::from_millis(150));
    let t = std::time::Instant::now();
    deps.get("web").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    fake.set_latency(Duration::ZERO);

    fake.set_pod_ready_delay(Duration::from_millis(300));
    deps.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 4}})),
    )
    .await
    .unwrap();
    let st = deps.get("web").await.unwrap().status.unwrap();
    assert_eq!((st.replicas, st.ready_replicas), (Some(4), Some(2)));
    assert_eq!(st.unavailable_replicas, Some(2));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let st = deps.get("web").await.unwrap().status.unwrap();
    assert_eq!(
        (st.ready_replicas, st.available_replicas),
        (Some(4), Some(4))
    );

    fake.stop().await.unwrap();
    let err = deps.get("web").await.unwrap_err();
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "unreachable, not an API answer: {err:?}"
    );
}

#[tokio::test]
async fn fake_kube_applies_the_kustomize_dev_overlay() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::process::Command::new("kubectl")
        .args(["kustomize", "deploy/k8s/overlays/dev"])
        .current_dir(&root)
        .output()
        .expect("kubectl is on the test image (tests/deploy needs it too)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    let fake = FakeKube::start().await;
    let applied = fake.apply(&yaml).expect("the overlay applies");
    let kinds: Vec<&str> = applied.applied.iter().map(|r| r.kind.as_str()).collect();
    assert!(
        kinds.contains(&"Deployment") && kinds.contains(&"Service"),
        "{kinds:?}"
    );
    assert!(
        applied.skipped.iter().any(|r| r.kind == "ServiceAccount"),
        "{:?}",
        applied.skipped
    );
    let deps = fake.list("apps/v1", "Deployment", None);
    assert!(deps.iter().any(|d| {
        d["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("-canary"))
    }));
    for d in &deps {
        assert!(
            d["status"]["observedGeneration"].is_number(),
            "the controller ran: {d}"
        );
    }

    let err = fake
        .apply("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"x\"}}")
        .unwrap_err();
    assert!(
        matches!(
            err,
            testkit::fake_kube::FakeKubeError::Rejected { code: 422, .. }
        ),
        "{err}"
    );
    assert!(matches!(
        fake.apply("a: [").unwrap_err(),
        testkit::fake_kube::FakeKubeError::Parse(_)
    ));
}

#[tokio::test]
async fn fake_kube_binary_serves_with_control_api() {
    use tokio::io::AsyncBufReadExt;
    let tmp = temp_dir();
    let kc = tmp.path().join("kubeconfig");
    let seed = tmp.path().join("seed.json");
    std::fs::write(
        &seed,
        serde_json::to_string(&json!([deployment("web", "stable", "web:1", 1)])).unwrap(),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-kube"))
        .args(["--port", "0", "--exec-auth", "--namespace", NS])
        .arg("--kubeconfig-out")
        .arg(&kc)
        .arg("--seed")
        .arg(&seed)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("fake-kube starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("ready line in time")
        .unwrap()
        .unwrap();
    let url = line
        .strip_prefix("fake-kube listening on ")
        .expect("ready line")
        .to_string();

    let http = reqwest::Client::new();
    let r = http
        .put(format!("{url}/__fake/policy"))
        .json(&json!({"default_allow": true, "rules": [{"verb": "delete", "allow": false}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .post(format!("{url}/__fake/apply"))
        .body("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: extra\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&kc).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let c = Client::try_from(config).unwrap();
    let deps: Api<Deployment> = Api::default_namespaced(c.clone());
    assert_eq!(
        deps.get("web")
            .await
            .unwrap()
            .status
            .unwrap()
            .ready_replicas,
        Some(1)
    );
    let err = api_error(deps.delete("web", &Default::default()).await.unwrap_err());
    assert_eq!(err.code, 403);
    Api::<Namespace>::all(c)
        .get("extra")
        .await
        .expect("applied over the control API");

    let log: Vec<Value> = http
        .get(format!("{url}/__fake/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        log.iter()
            .any(|r| r["method"] == "DELETE" && r["status"] == 403),
        "{log:?}"
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn fake_kube_recorder_events_share_storage_with_core_events() {
    use kube::runtime::events::{Event as RecEvent, EventType, Recorder, Reporter};
    let (fake, c) = started_with_web().await;
    let d = fake.deployment(NS, "web-canary").unwrap();
    let reference = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("apps/v1".into()),
        kind: Some("Deployment".into()),
        name: Some("web-canary".into()),
        namespace: Some(NS.into()),
        uid: d["metadata"]["uid"].as_str().map(str::to_string),
        ..Default::default()
    };
    let recorder = Recorder::new(
        c.clone(),
        Reporter {
            controller: "flightdeck-console".into(),
            instance: None,
        },
    );
    let ev = RecEvent {
        type_: EventType::Normal,
        reason: "CanaryAborted".into(),
        note: Some("error rate 0.04 > 0.01".into()),
        action: "Abort".into(),
        secondary: None,
    };
    recorder.publish(&ev, &reference).await.expect("created");
    recorder
        .publish(&ev, &reference)
        .await
        .expect("patched as a series");

    let core: Api<Event> = Api::namespaced(c.clone(), NS);
    let mine: Vec<Event> = core
        .list(&ListParams::default().fields("involvedObject.name=web-canary,reason=CanaryAborted"))
        .await
        .unwrap()
        .items;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0].message.as_deref(), Some("error rate 0.04 > 0.01"));
    assert_eq!(
        mine[0].reporting_component.as_deref(),
        Some("flightdeck-console")
    );
    assert_eq!(mine[0].series.as_ref().map(|s| s.count), Some(Some(2)));

    let v1: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(c, NS);
    let all = v1.list(&ListParams::default()).await.unwrap().items;
    let aborted = all
        .iter()
        .find(|e| e.reason.as_deref() == Some("CanaryAborted"))
        .expect("visible through events.k8s.io/v1");
    assert_eq!(
        aborted.regarding.as_ref().unwrap().name.as_deref(),
        Some("web-canary")
    );
    assert!(
        all.iter()
            .any(|e| e.reason.as_deref() == Some("ScalingReplicaSet")),
        "controller events too"
    );
}

#[tokio::test]
async fn fake_kube_discovery_and_optional_argo_rollouts() {
    use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
    use kube::discovery::Discovery;
    let (fake, c) = started_with_web().await;
    let d = Discovery::new(c.clone())
        .run()
        .await
        .expect("discovery over /api and /apis");
    assert!(d.has_group("apps"));
    assert!(
        !d.has_group("argoproj.io"),
        "no Argo Rollouts CRD by default"
    );
    let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout");
    let ar = ApiResource::from_gvk(&gvk);
    let rollouts: Api<DynamicObject> = Api::namespaced_with(c.clone(), NS, &ar);
    let err = api_error(rollouts.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(err.code, 404);

    fake.enable_rollouts(true);
    let d = Discovery::new(c.clone()).run().await.unwrap();
    let (found, caps) = d.resolve_gvk(&gvk).expect("Rollout discovered");
    assert_eq!(found.plural, "rollouts");
    assert!(caps.supports_operation(kube::discovery::verbs::PATCH));
    fake.apply_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"replicas": 2, "strategy": {"canary": {"steps": [{"setWeight": 10}, {"pause": {}}]}}},
    }))
    .unwrap();
    let list = rollouts.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let patched = rollouts
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": true}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["paused"], true);
    assert_eq!(patched.metadata.generation, Some(2));
}

/// The pod proxy in front of the real agent-service binary (built by `cargo build -p
/// agent-service`; the workspace test run builds it).
#[tokio::test]
async fn fake_kube_pod_proxy_to_real_agent_service() {
    let svc = testkit::AgentService::spawn(testkit::Backend::Sqlite, &[]).await;
    let (fake, c) = started_with_web().await;
    fake.set_backend(
        NS,
        BTreeMap::from([("track".to_string(), "canary".to_string())]),
        svc.base_url(),
    );
    let pod = fake.pods(NS, &[("track", "canary")])[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let req = axum::http::Request::get(format!(
        "/api/v1/namespaces/{NS}/pods/{pod}:8080/proxy/healthz"
    ))
    .body(Vec::new())
    .unwrap();
    let health: Value = serde_json::from_str(&c.request_text(req).await.expect("proxied"))
        .expect("the agent-service's JSON");
    assert_eq!(health, json!({"status": "ok"}));
    let last = fake.request_log().pop().unwrap();
    assert_eq!(
        (last.path.ends_with("/proxy/healthz"), last.status),
        (true, 200)
    );
    tokio::task::spawn_blocking(move || drop(svc))
        .await
        .unwrap();
}
