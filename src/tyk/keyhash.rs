//! Tyk's key hashing (`internal/crypto/hash.go HashStr`, `internal/crypto/token.go
//! TokenHashAlgo` in TykTechnologies/tyk): with `hash_keys: true` a token `T` is stored as
//! `apikey-<HashStr(T)>` and counted in `quota-[<scope>-]<HashStr(T)>`.
//!
//! The algorithm comes from the token, not from the config: a base64-JSON token (`ey…`) names it
//! in its `h` field; every other token (legacy `org + id`) is murmur32. Digests are lower-case hex
//! of the big-endian bytes (`TykTechnologies/murmur3` `Sum`).

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// `hash_key_function` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgo {
    /// `""` or `murmur32`: MurmurHash3_x86_32, seed 0 (8 hex chars).
    Murmur32,
    /// `murmur64`: the first half (`h1`) of MurmurHash3_x64_128, seed 0 (16 hex chars).
    Murmur64,
    /// `murmur128`: `h1 ‖ h2` of MurmurHash3_x64_128, seed 0 (32 hex chars).
    Murmur128,
    /// `sha256` (64 hex chars).
    Sha256,
}

impl HashAlgo {
    /// Tyk's `hashFunction`: an unknown name falls back to murmur32 (the gateway logs an error).
    pub fn from_name(name: &str) -> HashAlgo {
        match name {
            "murmur64" => HashAlgo::Murmur64,
            "murmur128" => HashAlgo::Murmur128,
            "sha256" => HashAlgo::Sha256,
            _ => HashAlgo::Murmur32,
        }
    }
}

/// `TokenHashAlgo`: the `h` of a base64-JSON token, else murmur32.
pub fn token_hash_algo(token: &str) -> HashAlgo {
    if !token.starts_with("ey") {
        return HashAlgo::Murmur32;
    }
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(token) else {
        return HashAlgo::Murmur32;
    };
    #[derive(serde::Deserialize)]
    struct Token {
        #[serde(default)]
        h: String,
    }
    match serde_json::from_slice::<Token>(&bytes) {
        Ok(t) => HashAlgo::from_name(&t.h),
        Err(_) => HashAlgo::Murmur32,
    }
}

/// `HashStr(token)`: the hash a gateway with `hash_keys: true` stores the token under.
pub fn hash_str(token: &str) -> String {
    hash_with(token, token_hash_algo(token))
}

/// The digest of `input` with `algo`, as lower-case hex.
pub fn hash_with(input: &str, algo: HashAlgo) -> String {
    let mut cursor = std::io::Cursor::new(input.as_bytes());
    // Reading from a byte slice cannot fail; 0 is never used.
    match algo {
        HashAlgo::Murmur32 => format!(
            "{:08x}",
            murmur3::murmur3_32(&mut cursor, 0).unwrap_or_default()
        ),
        HashAlgo::Murmur64 | HashAlgo::Murmur128 => {
            let x = murmur3::murmur3_x64_128(&mut cursor, 0).unwrap_or_default();
            // The crate returns `h2 << 64 | h1`; Go's Sum writes h1 then h2, big-endian.
            let (h1, h2) = (x as u64, (x >> 64) as u64);
            if algo == HashAlgo::Murmur64 {
                format!("{h1:016x}")
            } else {
                format!("{h1:016x}{h2:016x}")
            }
        }
        HashAlgo::Sha256 => {
            let d = Sha256::digest(input.as_bytes());
            d.iter().map(|b| format!("{b:02x}")).collect()
        }
    }
}

/// True for what `HashStr` can produce: 8, 16, 32 or 64 lower-case hex characters.
pub fn looks_like_hash(s: &str) -> bool {
    matches!(s.len(), 8 | 16 | 32 | 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_of_abc() {
        assert_eq!(hash_with("abc", HashAlgo::Murmur32), "b3dd93fa");
        assert_eq!(hash_with("abc", HashAlgo::Murmur64), "b4963f3f3fad7867");
        assert_eq!(
            hash_with("abc", HashAlgo::Murmur128),
            "b4963f3f3fad78673ba2744126ca2d52"
        );
        assert_eq!(
            hash_with("abc", HashAlgo::Sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_algorithm_comes_from_the_token() {
        // Legacy org+id tokens: murmur32 whatever hash_key_function says.
        assert_eq!(
            hash_str("5e9d9544a1dcd60001d0ed208c0b3a2e6f1d4c7a9b5e2d1f0a3c4b5d"),
            "4b26bbf6"
        );
        assert_eq!(
            hash_str("5e9d9544a1dcd60001d0ed20c1a2b3c4d5e64f708192a3b4c5d6e7f8"),
            "45a0a4f9"
        );
        assert_eq!(
            hash_str("5e9d9544a1dcd60001d0ed200123456789abcdef0123456789abcdef"),
            "f160ead4"
        );
        let b64 = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6IjdmM2MyYTFiOWU4ZDRmNmE4YjdjNmQ1ZTRmM2EyYjFjIiwiaCI6Im11cm11cjY0In0=";
        assert_eq!(token_hash_algo(b64), HashAlgo::Murmur64);
        assert_eq!(hash_str(b64), "c78cdedcb3a706c0");
        // Org ids are hashed like legacy tokens.
        assert_eq!(hash_str("5e9d9544a1dcd60001d0ed20"), "ab5c6ee9");
        assert_eq!(hash_str("64f1a2b3c4d5e6f708192a3b"), "56d4c0be");
        // `ey` that is not base64 JSON, and an unknown `h`: murmur32.
        assert_eq!(token_hash_algo("eyNOPE"), HashAlgo::Murmur32);
        assert_eq!(HashAlgo::from_name("md5"), HashAlgo::Murmur32);
    }

    #[test]
    fn hash_shapes() {
        assert!(looks_like_hash("4b26bbf6"));
        assert!(looks_like_hash("c78cdedcb3a706c0"));
        assert!(!looks_like_hash("4B26BBF6"));
        assert!(!looks_like_hash(
            "5e9d9544a1dcd60001d0ed208c0b3a2e6f1d4c7a9b5e2d1f0a3c4b5d"
        ));
    }
}
