//! `[email_backend]` rules that need no network: the address form and the settings each
//! backend requires, checked when the configuration loads (a key and line, not a failed row
//! at the first send).

use super::{EmailBackendCode, EmailBackendConfig};

/// `host:port` or `[v6]:port` → (host without brackets, port).
pub fn parse_smtp_address(addr: &str) -> Result<(String, u16), String> {
    let addr = addr.trim();
    let example = "host:port, e.g. smtp.example.com:587";
    if addr.is_empty() {
        return Err(format!("settings.SMTPAddress is required ({example})"));
    }
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("SMTPAddress {addr:?}: unclosed \"[\""))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("SMTPAddress {addr:?}: bad IPv6 address"));
        }
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("SMTPAddress {addr:?} needs a port ({example})"))?;
        (host, port)
    } else {
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| format!("SMTPAddress {addr:?} needs a port ({example})"))?;
        let ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !ok {
            return Err(format!(
                "SMTPAddress {addr:?}: bad host (IPv6 addresses go in brackets: [::1]:25)"
            ));
        }
        (host, port)
    };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("SMTPAddress {addr:?}: bad port {port:?}"))?;
    Ok((host.to_owned(), port))
}

impl EmailBackendConfig {
    /// The first `settings` key this backend needs and lacks (or has in a form that cannot
    /// work), with why; `None` when e-mail is off or the settings can work. The backends'
    /// own checks (`crate::notify::email`) agree; these run at load.
    pub fn settings_problem(&self) -> Option<(&'static str, String)> {
        if !self.enable_email_notifications {
            return None;
        }
        let has = |k: &str| self.settings.get(k).is_some_and(|v| !v.trim().is_empty());
        let required: &[&'static str] = match self.code {
            EmailBackendCode::Smtp => {
                let addr = self.settings.get("SMTPAddress").map_or("", String::as_str);
                return parse_smtp_address(addr).err().map(|e| ("SMTPAddress", e));
            }
            EmailBackendCode::Sendgrid | EmailBackendCode::Mandrill => &["ClientKey"],
            EmailBackendCode::Mailgun => &["Domain", "PrivateKey"],
            EmailBackendCode::Amazonses => &["Endpoint", "AccessKeyId", "SecretAccessKey"],
            EmailBackendCode::File => &[],
        };
        required
            .iter()
            .find(|k| !has(k))
            .map(|k| (*k, format!("settings.{k} is required for {}", self.code)))
    }
}
