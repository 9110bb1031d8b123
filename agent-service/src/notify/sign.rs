//! Signatures of outbound webhooks in the Standard Webhooks convention: a secret
//! `whsec_<base64 key>` per receiver; every delivery attempt carries `webhook-id` (the
//! event's id, the same on every attempt, for deduplication), `webhook-timestamp` (Unix
//! seconds of the attempt) and `webhook-signature: v1,<base64 HMAC-SHA256(key,
//! "<id>.<timestamp>.<body>")>`. A receiver recomputes the signature and refuses a
//! timestamp outside its tolerance, so a captured request cannot be replayed later.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of signing secrets.
pub const SECRET_PREFIX: &str = "whsec_";
/// The tolerance receivers should allow between a timestamp and their clock (5 minutes).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;
pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The HMAC key of a `whsec_<base64>` secret: 24 to 64 bytes. The error never contains
/// the secret.
pub fn parse_secret(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or_else(|| format!("the signing secret must start with {SECRET_PREFIX:?}"))?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| format!("the signing secret after {SECRET_PREFIX:?} must be base64"))?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!(
            "the signing secret must hold 24 to 64 bytes of key (it holds {}); e.g. whsec_$(openssl rand -base64 32)",
            key.len()
        ));
    }
    Ok(key)
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(format!(".{timestamp}.").as_bytes());
    mac.update(body);
    mac
}

/// The `webhook-signature` value of `body` sent as message `id` at `timestamp`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(key, id, timestamp, body).finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

/// Why a delivery does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is {0} s away from now, outside the tolerance")]
    OutsideTolerance(i64),
    #[error("no v1 signature in webhook-signature matches")]
    NoMatch,
}

/// Checks a delivery as a receiver does: the timestamp within `tolerance_secs` of
/// `now_secs` (both ways), then any `v1,` signature of the space-separated list matching
/// (compared in constant time).
pub fn verify(
    key: &[u8],
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    let skew = now_secs.saturating_sub(ts);
    if skew.abs() > tolerance_secs {
        return Err(VerifyError::OutsideTolerance(skew));
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let matched = signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| engine.decode(s).ok())
        .any(|tag| mac(key, id, ts, body).verify_slice(&tag).is_ok());
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &str = r#"{"test": 2432232314}"#;

    #[test]
    fn signs_like_the_specification_example() {
        let key = parse_secret(SECRET).unwrap();
        assert_eq!(
            sign(&key, ID, TS, BODY.as_bytes()),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn verification_checks_signature_and_tolerance() {
        let key = parse_secret(SECRET).unwrap();
        let sig = sign(&key, ID, TS, BODY.as_bytes());
        let ok = |ts: &str, sigs: &str, body: &str, now| {
            verify(
                &key,
                ID,
                ts,
                sigs,
                body.as_bytes(),
                now,
                DEFAULT_TOLERANCE_SECS,
            )
        };
        assert_eq!(ok("1614265330", &sig, BODY, TS + 10), Ok(()));
        let several = format!("v1,bm90IGl0 {sig}");
        assert_eq!(
            ok("1614265330", &several, BODY, TS),
            Ok(()),
            "any of the list"
        );
        assert_eq!(
            ok("1614265330", &sig, r#"{"test": 1}"#, TS),
            Err(VerifyError::NoMatch),
            "another body"
        );
        assert_eq!(
            ok("1614265331", &sig, BODY, TS),
            Err(VerifyError::NoMatch),
            "the timestamp is signed"
        );
        assert_eq!(
            ok("1614265330", &sig, BODY, TS + 301),
            Err(VerifyError::OutsideTolerance(301)),
            "a replay six minutes later"
        );
        assert_eq!(
            ok("1614265330", &sig, BODY, TS - 301),
            Err(VerifyError::OutsideTolerance(-301))
        );
        assert_eq!(ok("soon", &sig, BODY, TS), Err(VerifyError::BadTimestamp));
        let other = parse_secret("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(
            verify(&other, ID, "1614265330", &sig, BODY.as_bytes(), TS, 300),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn secrets_need_the_prefix_and_enough_key() {
        assert!(parse_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(parse_secret("whsec_!!!").is_err());
        let short = parse_secret("whsec_c2hvcnQ=").unwrap_err();
        assert!(
            short.contains("24 to 64") && !short.contains("c2hvcnQ"),
            "{short}"
        );
    }
}
