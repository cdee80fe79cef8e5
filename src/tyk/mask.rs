//! How keys are shown: Tyk keys and key hashes abbreviated so a screen, a log line or a
//! stored event never holds a usable credential.

/// Masks an API key for display: the first and last four characters of long keys, nothing of
/// short ones. The start of a Tyk key is its org id (or `eyJ` for base64 keys), not the secret.
pub fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 16 {
        return "****".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// Abbreviates a key hash (`hash_keys: true`) for display. A hash is not a credential (the
/// gateway only accepts raw tokens on its proxied APIs; Tyk's own Dashboard lists hashes), so
/// enough of it is shown to tell keys apart: up to 16 hex chars whole, longer ones as the
/// first 8 … last 4.
pub fn mask_hash(hash: &str) -> String {
    let chars: Vec<char> = hash.chars().collect();
    if chars.len() <= 16 {
        return hash.to_string();
    }
    let head: String = chars[..8].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}
