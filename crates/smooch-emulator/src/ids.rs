//! Random ids shaped like Smooch's, and deterministic fake values derived
//! from request input (so that the same input always gives the same answer).

use rand::Rng;
use sha2::{Digest, Sha256};

const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn random_from(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

/// App, integration and webhook ids: 24 lowercase hex characters, shaped
/// like MongoDB ObjectIds as Smooch's are: seconds since the epoch, then a
/// counter that starts at a random value. So ids made by one process sort
/// in creation order, which `/v2`'s cursor paging relies on.
pub fn object_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: OnceLock<AtomicU64> = OnceLock::new();
    let counter = COUNTER
        .get_or_init(|| AtomicU64::new(rand::rng().random::<u64>() >> 8))
        .fetch_add(1, Ordering::Relaxed);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{:08x}{counter:016x}", secs as u32)
}

/// An object id derived from the parts (24 lowercase hex characters), for
/// objects made when an older state file is loaded, so that they keep
/// their id across restarts until the file is rewritten.
pub fn derived_object_id(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0xff]);
    }
    hex::encode(&hasher.finalize()[..12])
}

/// Secret key ids: `app_` and 24 hex characters.
pub fn key_id() -> String {
    format!("app_{}", object_id())
}

/// App tokens: 25 lowercase alphanumerics.
pub fn app_token() -> String {
    random_from(LOWER_ALNUM, 25)
}

/// Key, webhook and app-maker secrets: 24 URL-safe characters, the first
/// a letter or digit, so that a secret never starts with `-` and can follow
/// a command-line flag as is (`--maker-secret <secret>`).
pub fn secret() -> String {
    let mut secret = random_from(ALNUM, 1);
    secret.push_str(&random_from(URL_SAFE, 23));
    secret
}

/// A stable hash of the parts (with a separator so that `["ab","c"]` and
/// `["a","bc"]` differ), so fake values stay the same across restarts.
fn digest(parts: &[&str]) -> u64 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0xff]);
    }
    let hash = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(first)
}

/// 8 lowercase hex characters derived from the parts.
pub fn hex8(parts: &[&str]) -> String {
    format!("{:08x}", digest(parts) as u32)
}

/// `len` decimal digits (at most 19) derived from the parts; the first is never 0.
pub fn digits(parts: &[&str], len: usize) -> String {
    let len = len.clamp(1, 19);
    let span = 10u64.pow(len as u32 - 1);
    (span + digest(parts) % (9 * span)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_smooch() {
        let id = object_id();
        assert_eq!(id.len(), 24);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let key = key_id();
        assert!(key.starts_with("app_") && key.len() == 28);
        let token = app_token();
        assert_eq!(token.len(), 25);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        let secret = secret();
        assert_eq!(secret.len(), 24);
        assert!(
            secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(object_id(), object_id());
        let (a, b) = (object_id(), object_id());
        assert!(a < b, "{a} then {b}");
        assert_eq!(derived_object_id(&["x"]).len(), 24);
        assert_eq!(derived_object_id(&["x"]), derived_object_id(&["x"]));
    }

    #[test]
    fn secrets_never_start_with_a_hyphen() {
        // With a first character drawn from all 64, about 156 of these
        // would start with '-'.
        for _ in 0..10_000 {
            let secret = secret();
            assert_eq!(secret.len(), 24);
            assert!(
                secret.starts_with(|c: char| c.is_ascii_alphanumeric()),
                "{secret}"
            );
        }
    }

    #[test]
    fn derived_values_are_deterministic() {
        assert_eq!(hex8(&["a", "b"]), hex8(&["a", "b"]));
        assert_ne!(hex8(&["ab", "c"]), hex8(&["a", "bc"]));
        let d = digits(&["x"], 15);
        assert_eq!(d.len(), 15);
        assert!(!d.starts_with('0'));
        assert_eq!(d, digits(&["x"], 15));
    }
}
