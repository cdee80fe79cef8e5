//! `Secret`: a string that masks itself wherever it is shown.

#[allow(unused_imports)]
use super::*;

/// A credential. `Debug` and `Display` print a mask, never the value; use [`Secret::expose`]
/// at the single place that sends it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub(super) String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `••••` plus the last 4 characters when the secret is long enough (≥ 12) that they do not
    /// give it away; empty stays empty so "not set" is visible.
    pub fn masked(&self) -> String {
        let len = self.0.chars().count();
        if len == 0 {
            String::new()
        } else if len >= 12 {
            let tail: String = self.0.chars().skip(len - 4).collect();
            format!("••••{tail}")
        } else {
            "••••".to_owned()
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.masked())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Secret(Interp::deserialize(d)?.0))
    }
}
