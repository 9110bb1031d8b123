//! Sealing receivers' URLs and secrets at rest: AES-256-GCM (ring) under `NOTIFY_SECRET_KEY`,
//! a fresh random nonce per value, and the receiver's id and the field's name as associated
//! data, so a sealed value copied to another row or column does not open.
//!
//! A sealed value reads `v1.<key id>.<base64 of nonce, ciphertext and tag>`; the key id (the
//! first 8 hex digits of a SHA-256 of the key) names the key it was sealed under, so a value
//! sealed under another key is reported as such rather than as corrupt.

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

use crate::config::Secret;

const VERSION: &str = "v1";

/// The key that seals and opens receivers' secrets.
pub struct SecretBox {
    key: LessSafeKey,
    key_id: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBox(key {})", self.key_id)
    }
}

/// Why a sealed value did not open. The messages never contain the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("it was sealed under another NOTIFY_SECRET_KEY (key {0}); re-create the receiver")]
    OtherKey(String),
    #[error("it is not a sealed value, or it was changed or moved to another receiver")]
    Corrupt,
}

impl SecretBox {
    /// The box of `NOTIFY_SECRET_KEY`: 32 bytes in base64.
    pub fn new(key: &Secret) -> Result<Self, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key.expose().trim())
            .map_err(|_| "NOTIFY_SECRET_KEY is not base64".to_string())?;
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| "NOTIFY_SECRET_KEY must be 32 bytes".to_string())?;
        let mut digest = Sha256::new();
        digest.update(b"flightdeck notify key id\0");
        digest.update(&bytes);
        Ok(Self {
            key: LessSafeKey::new(unbound),
            key_id: hex::encode(&digest.finalize()[..4]),
            rng: SystemRandom::new(),
        })
    }

    /// Seals `plaintext` for `field` of `owner` (a receiver id).
    pub fn seal(&self, owner: &str, field: &str, plaintext: &str) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| "the system random number generator failed".to_string())?;
        let mut data = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(owner, field)),
                &mut data,
            )
            .map_err(|_| "sealing failed".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!(
            "{VERSION}.{}.{}",
            self.key_id,
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
        ))
    }

    /// Opens a value [`SecretBox::seal`] made for the same `owner` and `field`.
    pub fn open(&self, owner: &str, field: &str, sealed: &str) -> Result<Secret, OpenError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(OpenError::Corrupt);
        };
        if key_id != self.key_id {
            return Err(OpenError::OtherKey(key_id.to_string()));
        }
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(body)
            .map_err(|_| OpenError::Corrupt)?;
        if raw.len() < NONCE_LEN {
            return Err(OpenError::Corrupt);
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Corrupt)?;
        let mut data = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad(owner, field)), &mut data)
            .map_err(|_| OpenError::Corrupt)?;
        String::from_utf8(plain.to_vec())
            .map(Secret::new)
            .map_err(|_| OpenError::Corrupt)
    }
}

fn aad(owner: &str, field: &str) -> Vec<u8> {
    format!("{owner}\0{field}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Secret {
        Secret::new(base64::engine::general_purpose::STANDARD.encode([byte; 32]))
    }

    #[test]
    fn sealed_values_open_only_for_their_owner_field_and_key() {
        let b = SecretBox::new(&key(7)).unwrap();
        let sealed = b.seal("rcv_1", "secret", "whsec_c2VjcmV0").unwrap();
        assert!(!sealed.contains("whsec"), "{sealed}");
        assert!(sealed.starts_with("v1."), "{sealed}");
        assert_eq!(
            b.open("rcv_1", "secret", &sealed).unwrap().expose(),
            "whsec_c2VjcmV0"
        );
        assert_ne!(
            sealed,
            b.seal("rcv_1", "secret", "whsec_c2VjcmV0").unwrap(),
            "a fresh nonce each time"
        );
        assert_eq!(b.open("rcv_2", "secret", &sealed), Err(OpenError::Corrupt));
        assert_eq!(b.open("rcv_1", "url", &sealed), Err(OpenError::Corrupt));
        let mut tampered = sealed.clone();
        tampered.push('A');
        assert!(b.open("rcv_1", "secret", &tampered).is_err());
        let other = SecretBox::new(&key(8)).unwrap();
        assert!(matches!(
            other.open("rcv_1", "secret", &sealed),
            Err(OpenError::OtherKey(_))
        ));
        assert_eq!(b.open("rcv_1", "secret", "plain"), Err(OpenError::Corrupt));
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(SecretBox::new(&Secret::new("not base64!")).is_err());
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        assert!(SecretBox::new(&Secret::new(short)).is_err());
        assert!(format!("{:?}", SecretBox::new(&key(1)).unwrap()).starts_with("SecretBox(key "));
    }
}
