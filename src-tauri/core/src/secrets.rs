//! Where API keys and tokens live: the OS keyring (service `flightdeck`, user = profile
//! id) behind a small [`SecretStore`] trait, with an in-memory store for unit tests.
//!
//! keyring's own mock does not keep a secret across two `Entry` values, hence the trait.
//! Calls may block on D-Bus: async callers run them in `spawn_blocking` (see `Host`).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::{ProfileId, Secret};
use crate::error::{Error, Result};

/// The keyring service name every Flightdeck secret is stored under.
pub const KEYRING_SERVICE: &str = "flightdeck";

/// Stores one secret per profile.
pub trait SecretStore: Send + Sync {
    /// `None` when the profile has no stored secret.
    fn get(&self, profile: &ProfileId) -> Result<Option<Secret>>;
    /// Stores or replaces.
    fn set(&self, profile: &ProfileId, secret: &Secret) -> Result<()>;
    /// Removes; removing what is not there is fine.
    fn delete(&self, profile: &ProfileId) -> Result<()>;
    /// A short description for the Settings view's keyring status, or an error saying what
    /// is missing.
    fn probe(&self) -> Result<String>;
}

/// The OS keyring (on Linux the Secret Service over D-Bus, e.g. gnome-keyring).
#[derive(Debug, Clone)]
pub struct KeyringStore {
    service: String,
}

impl Default for KeyringStore {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyringStore {
    pub fn new() -> Self {
        Self {
            service: KEYRING_SERVICE.to_string(),
        }
    }

    /// A store under another service name (tests use one of their own).
    pub fn with_service(service: &str) -> Self {
        Self {
            service: service.to_string(),
        }
    }

    fn entry(&self, user: &str) -> Result<keyring::Entry> {
        keyring::Entry::new(&self.service, user).map_err(keyring_error)
    }
}

fn keyring_error(e: keyring::Error) -> Error {
    match e {
        keyring::Error::PlatformFailure(inner) | keyring::Error::NoStorageAccess(inner) => {
            Error::Keyring(format!(
                "no usable Secret Service ({inner}); start a keyring daemon such as \
                 gnome-keyring in this desktop session"
            ))
        }
        other => Error::Keyring(other.to_string()),
    }
}

impl SecretStore for KeyringStore {
    fn get(&self, profile: &ProfileId) -> Result<Option<Secret>> {
        match self.entry(profile.as_str())?.get_password() {
            Ok(raw) => Secret::parse(&raw).map(Some).map_err(|_| {
                Error::Keyring(format!(
                    "the secret stored for profile {profile} is not a valid API key; store it again"
                ))
            }),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_error(e)),
        }
    }

    fn set(&self, profile: &ProfileId, secret: &Secret) -> Result<()> {
        self.entry(profile.as_str())?
            .set_password(secret.expose())
            .map_err(keyring_error)
    }

    fn delete(&self, profile: &ProfileId) -> Result<()> {
        match self.entry(profile.as_str())?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keyring_error(e)),
        }
    }

    fn probe(&self) -> Result<String> {
        match self.entry("__probe__")?.get_password() {
            Ok(_) | Err(keyring::Error::NoEntry) => {
                Ok(format!("OS keyring (service {:?})", self.service))
            }
            Err(e) => Err(keyring_error(e)),
        }
    }
}

/// Secrets in a map, for unit tests and for a session that must not persist anything.
#[derive(Debug, Default)]
pub struct MemoryStore {
    secrets: Mutex<HashMap<ProfileId, Secret>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<ProfileId, Secret>> {
        // A poisoned map still holds consistent entries (each operation is one insert or
        // remove), so recover it rather than fail every later call.
        self.secrets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, profile: &ProfileId) -> Result<Option<Secret>> {
        Ok(self.map().get(profile).cloned())
    }

    fn set(&self, profile: &ProfileId, secret: &Secret) -> Result<()> {
        self.map().insert(profile.clone(), secret.clone());
        Ok(())
    }

    fn delete(&self, profile: &ProfileId) -> Result<()> {
        self.map().remove(profile);
        Ok(())
    }

    fn probe(&self) -> Result<String> {
        Ok("in-memory (secrets are not persisted)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_round_trip() {
        let store = MemoryStore::new();
        let a = ProfileId::parse("prod").unwrap();
        let b = ProfileId::parse("staging").unwrap();
        assert_eq!(store.get(&a).unwrap(), None);
        store.set(&a, &Secret::parse("key-a").unwrap()).unwrap();
        store.set(&b, &Secret::parse("key-b").unwrap()).unwrap();
        store.set(&a, &Secret::parse("key-a2").unwrap()).unwrap();
        assert_eq!(store.get(&a).unwrap().unwrap().expose(), "key-a2");
        store.delete(&a).unwrap();
        store.delete(&a).unwrap();
        assert_eq!(store.get(&a).unwrap(), None);
        assert_eq!(store.get(&b).unwrap().unwrap().expose(), "key-b");
        assert!(store.probe().unwrap().contains("in-memory"));
    }
}
