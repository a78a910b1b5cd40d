//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>, "Signature scheme"):
//! the secret is `whsec_` followed by base64 of 24 to 64 random bytes; a message is signed
//! as `v1,` + base64(HMAC-SHA256(secret, "{webhook-id}.{webhook-timestamp}.{body}")),
//! sent in the `webhook-signature` header with `webhook-id` and `webhook-timestamp`
//! (unix seconds of the attempt).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The shortest secret accepted, in bytes (the specification's minimum).
pub const MIN_SECRET_BYTES: usize = 24;
/// The longest secret accepted, in bytes (the specification's maximum).
pub const MAX_SECRET_BYTES: usize = 64;

/// Header: the event's unique id (the same on every retry).
pub const HEADER_ID: &str = "webhook-id";
/// Header: unix seconds when this attempt was signed.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header: `v1,<base64 signature>`.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// Why a secret is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// It does not start with `whsec_`.
    #[error("must start with \"whsec_\" followed by base64 (Standard Webhooks form)")]
    Prefix,
    /// The part after `whsec_` is not base64.
    #[error("the part after \"whsec_\" is not valid base64")]
    Base64,
    /// The decoded key is too short or too long.
    #[error(
        "decodes to {0} bytes; a secret must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes"
    )]
    Length(usize),
}

/// A parsed signing secret (the raw key bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`.
    pub fn parse(secret: &str) -> Result<WebhookSecret, SecretError> {
        let encoded = secret
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::Prefix)?;
        let key = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        Ok(WebhookSecret { key })
    }

    /// A new random secret in `whsec_` form (32 bytes).
    pub fn generate() -> String {
        let key: Vec<u8> = (0..32).map(|_| fastrand::u8(..)).collect();
        format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
    }

    /// The `webhook-signature` value for one attempt: `v1,<base64>`.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key)
            .expect("HMAC-SHA256 takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_specifications_example() {
        // The example from the Standard Webhooks specification's reference tests.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
        let sig = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn bad_secrets_are_refused() {
        assert_eq!(WebhookSecret::parse("abc"), Err(SecretError::Prefix));
        assert_eq!(WebhookSecret::parse("whsec_!!"), Err(SecretError::Base64));
        assert_eq!(
            WebhookSecret::parse("whsec_c2hvcnQ="),
            Err(SecretError::Length(5))
        );
        let generated = WebhookSecret::generate();
        WebhookSecret::parse(&generated).expect("a generated secret parses");
    }
}
