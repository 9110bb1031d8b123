//! [`Host`]: everything impure the console core needs, in one value (HTTP client, clock,
//! local store, secret store), plus the few operations that combine them: profiles with
//! their keys, a client for a profile, audited actions, and metric scrapes into series. The
//! Tauri command layer holds one `Host` and stays a thin parse-call-map layer.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::agent::{AgentClient, http_client};
use crate::clock::{Clock, SystemClock};
use crate::domain::{BaseUrl, ProfileId, Secret};
use crate::error::{Error, Result};
use crate::secrets::{KeyringStore, MemoryStore, SecretStore};
use crate::series::{Derived, SeriesKey, SeriesStore};
use crate::store::{NewAction, Outcome, Profile, Store, Target};

/// How long a key read from the secret store is reused. The live loops ask for a client
/// every scrape interval; without this each would be a D-Bus round trip to the Secret
/// Service. Keys changed through the console take effect at once (the entry is dropped);
/// one changed in another keyring tool, within this time.
pub const KEY_CACHE_MS: i64 = 60_000;

/// Keys as last read from the secret store, each with the time of the read (ms).
type KeyCache = HashMap<ProfileId, (Option<Secret>, i64)>;

/// The impure parts, injected.
#[derive(Clone)]
pub struct Host {
    pub http: reqwest::Client,
    pub clock: Arc<dyn Clock>,
    pub store: Store,
    pub secrets: Arc<dyn SecretStore>,
    /// Keys as last read, with when ([`KEY_CACHE_MS`]).
    keys: Arc<Mutex<KeyCache>>,
}

impl Host {
    pub fn new(
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        store: Store,
        secrets: Arc<dyn SecretStore>,
    ) -> Self {
        Self {
            http,
            clock,
            store,
            secrets,
            keys: Arc::default(),
        }
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, KeyCache> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A profile's key: from the cache when read less than [`KEY_CACHE_MS`] ago.
    async fn key_of(&self, id: &ProfileId) -> Result<Option<Secret>> {
        let now = self.clock.now_ms();
        if let Some((key, at)) = self.keys().get(id)
            && now.saturating_sub(*at) < KEY_CACHE_MS
        {
            return Ok(key.clone());
        }
        let pid = id.clone();
        let key = self.secrets_call(move |s| s.get(&pid)).await?;
        self.keys().insert(id.clone(), (key.clone(), now));
        Ok(key)
    }

    /// The desktop wiring: `console.db` in `data_dir`, the OS keyring, the system clock.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        Ok(Self::new(
            http_client()?,
            Arc::new(SystemClock),
            Store::open(&data_dir.join("console.db")).await?,
            Arc::new(KeyringStore::new()),
        ))
    }

    /// Everything in memory: for tests and for a session that must leave nothing behind.
    pub async fn in_memory(clock: Arc<dyn Clock>) -> Result<Self> {
        Ok(Self::new(
            http_client()?,
            clock,
            Store::in_memory().await?,
            Arc::new(MemoryStore::new()),
        ))
    }

    async fn secrets_call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn SecretStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        // Keyring calls may block on D-Bus: keep them off the async workers.
        let secrets = self.secrets.clone();
        tokio::task::spawn_blocking(move || f(secrets.as_ref()))
            .await
            .map_err(|e| Error::Keyring(format!("the keyring call did not finish: {e}")))?
    }

    /// Saves an agent-service profile; its key goes to the secret store, never the database.
    pub async fn save_agent_profile(
        &self,
        id: ProfileId,
        name: &str,
        url: &str,
        key: Option<&str>,
    ) -> Result<Profile> {
        let profile = Profile::new(
            id,
            name,
            Target::Agent {
                url: BaseUrl::parse(url)?,
            },
        )?;
        let secret = key.map(Secret::parse).transpose()?;
        let mut previous = None;
        if let Some(secret) = secret {
            self.keys().remove(&profile.id);
            let pid = profile.id.clone();
            previous = self
                .secrets_call(move |s| {
                    let before = s.get(&pid)?;
                    s.set(&pid, &secret)?;
                    Ok(before)
                })
                .await
                .map(Some)?;
        }
        if let Err(e) = self.store.save_profile(&profile, self.clock.now_ms()).await {
            if let Some(before) = previous {
                // Put the key store back as it was: no orphan key, no lost key.
                let pid = profile.id.clone();
                let _ = self
                    .secrets_call(move |s| match before {
                        Some(old) => s.set(&pid, &old),
                        None => s.delete(&pid),
                    })
                    .await;
            }
            self.keys().remove(&profile.id);
            return Err(e);
        }
        // A read between the write and here may have cached the old key.
        self.keys().remove(&profile.id);
        Ok(profile)
    }

    /// Removes a profile and its key.
    pub async fn remove_profile(&self, id: &ProfileId) -> Result<bool> {
        let pid = id.clone();
        self.keys().remove(id);
        let deleted = self.secrets_call(move |s| s.delete(&pid)).await;
        self.keys().remove(id);
        deleted?;
        self.store.delete_profile(id).await
    }

    /// A client for an agent profile, with its key from the secret store.
    pub async fn agent_client(&self, id: &ProfileId) -> Result<AgentClient> {
        let profile = self
            .store
            .profile(id)
            .await?
            .ok_or_else(|| Error::invalid(format!("there is no profile {id}")))?;
        let Target::Agent { url } = profile.target else {
            return Err(Error::invalid(format!(
                "profile {id} is a Kubernetes profile, not an agent service"
            )));
        };
        let key = self.key_of(id).await?;
        Ok(AgentClient::new(self.http.clone(), url, key))
    }

    /// What the Settings view shows as keyring status.
    pub async fn keyring_status(&self) -> Result<String> {
        self.secrets_call(|s| s.probe()).await
    }

    /// Runs an operator action and records who did what to which target and how it ended
    /// (the error's message as detail on failure). The action's result is returned as is;
    /// a failure to record it is an error only when the action itself succeeded.
    pub async fn audited<T>(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        run: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.audited_because(actor, action, target, "", run).await
    }

    /// [`Host::audited`] that also records why the operator acted (`reason`, may be empty),
    /// whatever the outcome: "reason: …" on success, "code: error (reason: …)" on failure.
    pub async fn audited_because<T>(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        reason: &str,
        run: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let result = run.await;
        let reason = reason.trim();
        let (outcome, detail) = match &result {
            Ok(_) if reason.is_empty() => (Outcome::Ok, String::new()),
            Ok(_) => (Outcome::Ok, format!("reason: {reason}")),
            Err(e) if reason.is_empty() => (Outcome::Failed, format!("{}: {e}", e.code().as_str())),
            Err(e) => (
                Outcome::Failed,
                format!("{}: {e} (reason: {reason})", e.code().as_str()),
            ),
        };
        let logged = self
            .store
            .log_action(
                &NewAction {
                    actor,
                    action,
                    target,
                    outcome,
                    detail: &detail,
                },
                self.clock.now_ms(),
            )
            .await;
        match (result, logged) {
            (Ok(v), Ok(_)) => Ok(v),
            (Ok(_), Err(e)) => Err(e),
            (Err(e), _) => Err(e),
        }
    }

    /// Scrapes `/metrics` of a service, adds the derived values to `series` at the clock's
    /// now, and keeps them in the local store's history.
    pub async fn scrape(
        &self,
        client: &AgentClient,
        service: &str,
        track: &str,
        series: &mut SeriesStore,
    ) -> Result<Derived> {
        let scrape = client.metrics().await?;
        let t_ms = self.clock.now_ms();
        let derived = series.ingest(service, track, t_ms, &scrape);
        for (metric, v) in &derived {
            let key = SeriesKey {
                service: service.to_string(),
                track: track.to_string(),
                metric: *metric,
            };
            self.store
                .append_points(&key, &[crate::series::Point { t_ms, v: *v }])
                .await?;
        }
        Ok(derived)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn profiles_keep_keys_out_of_the_database() {
        let host = Host::in_memory(Arc::new(ManualClock::new(1000)))
            .await
            .unwrap();
        let id = ProfileId::parse("prod").unwrap();
        let p = host
            .save_agent_profile(
                id.clone(),
                "Production",
                "https://agent.example.com",
                Some("fdk_secret_1"),
            )
            .await
            .unwrap();
        assert_eq!(p.name, "Production");
        assert_eq!(
            host.secrets.get(&id).unwrap().unwrap().expose(),
            "fdk_secret_1"
        );
        let client = host.agent_client(&id).await.unwrap();
        assert_eq!(client.base().as_str(), "https://agent.example.com");
        assert!(!format!("{client:?}").contains("fdk_secret_1"));
        // Bad input is refused before anything is stored.
        let bad = host
            .save_agent_profile(ProfileId::parse("x").unwrap(), "X", "not a url", Some("k"))
            .await;
        assert_eq!(bad.unwrap_err().code().as_str(), "invalid");
        assert_eq!(
            host.secrets.get(&ProfileId::parse("x").unwrap()).unwrap(),
            None
        );
        // A name clash leaves no orphan key behind.
        let clash = host
            .save_agent_profile(
                ProfileId::parse("y").unwrap(),
                "Production",
                "http://y",
                Some("k"),
            )
            .await;
        assert!(clash.is_err());
        assert_eq!(
            host.secrets.get(&ProfileId::parse("y").unwrap()).unwrap(),
            None
        );
        assert!(host.remove_profile(&id).await.unwrap());
        assert_eq!(host.secrets.get(&id).unwrap(), None);
        assert_eq!(
            host.agent_client(&id).await.unwrap_err().code().as_str(),
            "invalid"
        );
        assert!(host.keyring_status().await.unwrap().contains("in-memory"));
    }

    /// Counts reads, to see which reach the secret store.
    struct Counting(MemoryStore, std::sync::atomic::AtomicUsize);
    impl SecretStore for Counting {
        fn get(&self, profile: &ProfileId) -> Result<Option<Secret>> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0.get(profile)
        }
        fn set(&self, profile: &ProfileId, secret: &Secret) -> Result<()> {
            self.0.set(profile, secret)
        }
        fn delete(&self, profile: &ProfileId) -> Result<()> {
            self.0.delete(profile)
        }
        fn probe(&self) -> Result<String> {
            self.0.probe()
        }
    }

    #[tokio::test]
    async fn keys_are_read_once_a_minute_and_console_changes_apply_at_once() {
        let clock = Arc::new(ManualClock::new(1000));
        let store = Arc::new(Counting(MemoryStore::new(), Default::default()));
        let host = Host::new(
            http_client().unwrap(),
            clock.clone(),
            Store::in_memory().await.unwrap(),
            store.clone(),
        );
        let reads = || store.1.load(std::sync::atomic::Ordering::SeqCst);
        let key = |s: Option<Secret>| s.map(|s| s.expose().to_string());
        let id = ProfileId::parse("prod").unwrap();
        host.save_agent_profile(id.clone(), "Prod", "http://a", Some("fdk_one"))
            .await
            .unwrap();
        let before = reads();
        for _ in 0..5 {
            assert_eq!(
                key(host.key_of(&id).await.unwrap()).as_deref(),
                Some("fdk_one")
            );
            host.agent_client(&id).await.unwrap();
        }
        assert_eq!(reads() - before, 1, "one read serves the next minute");
        // Changed behind the console's back: seen once the cached read is a minute old.
        store.set(&id, &Secret::parse("fdk_two").unwrap()).unwrap();
        clock.advance_ms(KEY_CACHE_MS - 1);
        assert_eq!(
            key(host.key_of(&id).await.unwrap()).as_deref(),
            Some("fdk_one")
        );
        clock.advance_ms(1);
        assert_eq!(
            key(host.key_of(&id).await.unwrap()).as_deref(),
            Some("fdk_two")
        );
        assert_eq!(reads() - before, 2);
        // Changed through the console: at once.
        host.save_agent_profile(id.clone(), "Prod", "http://a", Some("fdk_three"))
            .await
            .unwrap();
        assert_eq!(
            key(host.key_of(&id).await.unwrap()).as_deref(),
            Some("fdk_three")
        );
        host.remove_profile(&id).await.unwrap();
        assert_eq!(host.key_of(&id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn actions_are_recorded_with_their_outcome() {
        let clock = Arc::new(ManualClock::new(5000));
        let host = Host::in_memory(clock.clone()).await.unwrap();
        let ok: Result<u8> = host
            .audited("prod (approver)", "approve", "approval/apr_1", async {
                Ok(1)
            })
            .await;
        assert_eq!(ok.unwrap(), 1);
        clock.advance_ms(10);
        let failed: Result<u8> = host
            .audited("prod (approver)", "approve", "approval/apr_2", async {
                Err(Error::invalid("reason is required"))
            })
            .await;
        assert!(failed.is_err());
        let log = host.store.actions(10, None).await.unwrap();
        let rows: Vec<(i64, &str, Outcome, &str)> = log
            .iter()
            .map(|a| (a.at_ms, a.target.as_str(), a.outcome, a.detail.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                (
                    5010,
                    "approval/apr_2",
                    Outcome::Failed,
                    "invalid: reason is required"
                ),
                (5000, "approval/apr_1", Outcome::Ok, ""),
            ]
        );
    }

    #[tokio::test]
    async fn the_operators_reason_is_recorded_whatever_the_outcome() {
        let host = Host::in_memory(Arc::new(ManualClock::new(1)))
            .await
            .unwrap();
        let _ = host
            .audited_because("me", "pause", "release/a", " incident 42 ", async {
                Ok(())
            })
            .await;
        let _: Result<()> = host
            .audited_because("me", "abort", "release/b", "bad canary", async {
                Err(Error::invalid("no canary"))
            })
            .await;
        let log = host.store.actions(10, None).await.unwrap();
        let details: Vec<&str> = log.iter().map(|a| a.detail.as_str()).collect();
        assert!(details.contains(&"reason: incident 42"), "{details:?}");
        assert!(
            details.contains(&"invalid: no canary (reason: bad canary)"),
            "{details:?}"
        );
    }
}
