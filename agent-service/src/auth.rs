//! API-key authentication: a bearer key is looked up by its hash and becomes a
//! [`Principal`]; a short-lived in-memory cache keeps the database off the hot path (a
//! revocation takes effect within [`CACHE_TTL`]). The HTTP side (the `Authorization`
//! header, the extractor) is `routes::auth`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::db::{Db, keys};
use crate::domain::Principal;
use crate::error::Error;

pub const CACHE_TTL: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (Option<Principal>, Instant)>>,
}

impl KeyCache {
    pub async fn authenticate(&self, db: &Db, plaintext: &str) -> Result<Option<Principal>, Error> {
        let hash = keys::hash_key(plaintext);
        if let Some((p, at)) = self.entries.lock().expect("cache lock").get(&hash)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(p.clone());
        }
        let found = keys::find_active(db, plaintext).await?.map(|k| Principal {
            key_id: k.id,
            key_name: k.name,
            tenant: k.tenant,
            roles: k.roles,
        });
        let mut map = self.entries.lock().expect("cache lock");
        if map.len() > 10_000 {
            map.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        map.insert(hash, (found.clone(), Instant::now()));
        Ok(found)
    }
}
