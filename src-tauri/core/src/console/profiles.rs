//! Connections: the agent-service profiles (Local while it runs, then the stored ones with
//! their keys in the keyring), the active profile, the keyring's state and the active
//! key's roles (`permissions_event` when they change).

use super::dto::*;
use super::{CmdResult, Console, LOCAL_PROFILE_ID, lock, map};
use crate::domain::{BaseUrl, ProfileId, Secret};
use crate::store::Target;

/// A profile id from a display name: lower case, `[a-z0-9_-]`, at most 64 characters.
pub fn profile_id_for(name: &str) -> Option<ProfileId> {
    let mut id = String::new();
    for c in name.trim().to_lowercase().chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
            c
        } else {
            '-'
        };
        if !(c == '-' && id.ends_with('-')) {
            id.push(c);
        }
    }
    let id: String = id.trim_matches('-').chars().take(64).collect();
    ProfileId::parse(&id).ok()
}

impl Console {
    pub async fn list_profiles(&self) -> CmdResult<ProfileList> {
        let mut profiles = Vec::new();
        if let Some(url) = self.local_url() {
            profiles.push(Profile {
                id: LOCAL_PROFILE_ID.into(),
                name: "Local".into(),
                kind: ProfileKind::Agent,
                is_local: true,
                url: Some(url),
                context: None,
                namespace: None,
                has_secret: true,
                agent_profile_id: None,
            });
        }
        let stored = self.inner.host.store.profiles().await?;
        let ids: Vec<ProfileId> = stored.iter().map(|p| p.id.clone()).collect();
        let secrets = self.inner.host.secrets.clone();
        let has: Vec<bool> = tokio::task::spawn_blocking(move || {
            ids.iter()
                .map(|id| secrets.get(id).map(|s| s.is_some()))
                .collect::<crate::Result<Vec<_>>>()
        })
        .await
        .map_err(|e| {
            CommandError::new(
                CommandErrorCode::Keyring,
                format!("the keyring call did not finish: {e}"),
            )
        })??;
        let links = self.inner.host.store.agent_links().await?;
        for (p, has_secret) in stored.into_iter().zip(has) {
            let agent_profile_id = links.get(&p.id).map(ToString::to_string);
            let (kind, url, context, namespace) = match p.target {
                Target::Agent { url } => (ProfileKind::Agent, Some(url.to_string()), None, None),
                Target::Kubernetes { context, namespace } => (
                    ProfileKind::Kubernetes,
                    None,
                    Some(context),
                    Some(namespace),
                ),
            };
            profiles.push(Profile {
                id: p.id.to_string(),
                name: p.name,
                kind,
                is_local: false,
                url,
                context,
                namespace,
                has_secret,
                agent_profile_id,
            });
        }
        Ok(ProfileList {
            profiles,
            active_id: self.active_id(),
        })
    }

    pub async fn add_agent_profile(&self, args: AddAgentProfileArgs) -> CmdResult<Profile> {
        self.guard(ActionId::ManageProfiles)?;
        let name = args.name.trim();
        if name.is_empty() {
            return Err(CommandError::invalid("The profile needs a name"));
        }
        let url = BaseUrl::parse(&args.url)?;
        Secret::parse(&args.api_key)?;
        let id = profile_id_for(name).unwrap_or_else(ProfileId::generate);
        if id.as_str() == LOCAL_PROFILE_ID || self.profile_exists(id.as_str()).await? {
            return Err(CommandError::new(
                CommandErrorCode::Conflict,
                format!("A profile named {name} already exists"),
            ));
        }
        let host = &self.inner.host;
        let saved = self
            .audited(
                "add_profile",
                &format!("profile/{id}"),
                host.save_agent_profile(id, name, url.as_str(), Some(&args.api_key)),
            )
            .await?;
        if self.active_id().is_none() {
            lock(&self.inner.state).persisted.active_id = Some(saved.id.to_string());
            self.save_settings()?;
            self.restart_live();
            // Kubernetes profiles follow the active agent-service profile.
            self.sync_releases().await;
        }
        Ok(Profile {
            id: saved.id.to_string(),
            name: saved.name,
            kind: ProfileKind::Agent,
            is_local: false,
            url: Some(url.to_string()),
            context: None,
            namespace: None,
            has_secret: true,
            agent_profile_id: None,
        })
    }

    pub async fn remove_profile(&self, args: ProfileIdArgs) -> CmdResult<ProfileList> {
        self.guard(ActionId::ManageProfiles)?;
        if args.profile_id == LOCAL_PROFILE_ID {
            return Err(CommandError::invalid("The Local profile cannot be removed"));
        }
        let pid = ProfileId::parse(&args.profile_id)?;
        if !self.profile_exists(pid.as_str()).await? {
            return Err(CommandError::not_found(format!(
                "No profile {}",
                args.profile_id
            )));
        }
        self.audited(
            "remove_profile",
            &format!("profile/{pid}"),
            self.inner.host.remove_profile(&pid),
        )
        .await?;
        self.sync_releases().await;
        if self.active_id().as_deref() == Some(pid.as_str()) {
            let next = self.default_active().await?;
            lock(&self.inner.state).persisted.active_id = next;
            self.save_settings()?;
            self.restart_live();
        }
        self.list_profiles().await
    }

    pub async fn set_active_profile(&self, args: ProfileIdArgs) -> CmdResult<ProfileList> {
        if !self.profile_exists(&args.profile_id).await? {
            return Err(CommandError::not_found(format!(
                "No profile {}",
                args.profile_id
            )));
        }
        if self.active_id().as_deref() != Some(args.profile_id.as_str()) {
            lock(&self.inner.state).persisted.active_id = Some(args.profile_id.clone());
            self.save_settings()?;
            self.restart_live();
            // Kubernetes profiles follow the active agent-service profile.
            self.sync_releases().await;
        }
        self.list_profiles().await
    }

    pub async fn keyring_status(&self) -> CmdResult<KeyringStatus> {
        let backend = if cfg!(target_os = "macos") {
            "keychain"
        } else if cfg!(target_os = "windows") {
            "windows-credential"
        } else {
            "secret-service"
        };
        Ok(match self.inner.host.keyring_status().await {
            Ok(message) => KeyringStatus {
                available: true,
                backend: if message.contains("in-memory") {
                    "memory".into()
                } else {
                    backend.into()
                },
                message,
            },
            Err(e) => KeyringStatus {
                available: false,
                backend: backend.into(),
                message: e.to_string(),
            },
        })
    }

    /// Reads the active key's roles (`GET /v1/whoami`) and what they allow; pushes
    /// `permissions_event` when that changed.
    pub async fn get_permissions(&self) -> CmdResult<Permissions> {
        let perms = match self.active_id() {
            None => map::permissions(
                None,
                &[],
                Some("No connection: add an agent-service profile in Settings"),
            ),
            Some(id) => match self.client_of(&id, "admin").await {
                Err(e) => map::permissions(
                    Some(&id),
                    &[],
                    Some(&format!("The key's roles could not be read: {}", e.message)),
                ),
                Ok(client) => match client.whoami().await {
                    Ok(who) => map::permissions(Some(&id), &who.roles, None),
                    Err(e) => map::permissions(
                        Some(&id),
                        &[],
                        Some(&format!("The key's roles could not be read: {e}")),
                    ),
                },
            },
        };
        let changed = {
            let mut st = lock(&self.inner.state);
            // A profile switch while asking: answer, but do not cache for the wrong profile.
            if st.persisted.active_id == perms.profile_id {
                let changed = st.permissions.as_ref() != Some(&perms);
                st.permissions = Some(perms.clone());
                changed
            } else {
                false
            }
        };
        if changed {
            self.emit("permissions_event", &perms);
        }
        Ok(perms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_ids_come_from_names() {
        let cases = [
            ("Production EU", Some("production-eu")),
            ("  staging/2 ", Some("staging-2")),
            ("prod_eu", Some("prod_eu")),
            ("Ünïcode", Some("n-code")),
            ("!!!", None),
        ];
        for (name, want) in cases {
            assert_eq!(
                profile_id_for(name).map(|p| p.to_string()).as_deref(),
                want,
                "{name}"
            );
        }
        assert_eq!(profile_id_for(&"a".repeat(100)).unwrap().as_str().len(), 64);
    }

    #[test]
    fn add_profile_args_never_print_the_key() {
        let a = AddAgentProfileArgs {
            name: "prod".into(),
            url: "https://x".into(),
            api_key: "fdk_live_secret".into(),
        };
        let shown = format!("{a:?}");
        assert!(!shown.contains("fdk_live_secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
