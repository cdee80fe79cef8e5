//! Checks of the values an admin types into an event's `webhook` and `email`.
//!
//! The Dashboard stores whatever it is sent and only fails later, when it fires the event; so
//! tykwatch refuses values the Dashboard could not use. Messages do not quote the value: webhook
//! URLs often carry tokens.

use reqwest::Url;

/// `webhook`: empty (no webhook) or an absolute `http`/`https` URL with a host.
pub fn check_webhook(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    const EXAMPLE: &str = "e.g. https://hooks.example.com/tyk, or empty for none";
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "the URL contains spaces or control characters ({EXAMPLE})"
        ));
    }
    let url = Url::parse(value).map_err(|e| format!("not an absolute URL: {e} ({EXAMPLE})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme must be http or https, not {:?} ({EXAMPLE})",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("the URL has no host ({EXAMPLE})"));
    }
    Ok(())
}

/// `email`: empty (no e-mail) or a comma-separated list of plain `local@domain` addresses.
pub fn check_email_list(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    for (i, part) in value.split(',').enumerate() {
        let address = part.trim();
        if address.is_empty() {
            return Err(format!(
                "address {} of the list is empty (separate addresses with one comma)",
                i + 1
            ));
        }
        check_email(address)?;
    }
    Ok(())
}

/// The rule of the `[notify]` addresses in `config.rs`, with a hint for the form's lists.
pub fn check_email(s: &str) -> Result<(), String> {
    crate::config::check_email(s).map_err(|e| format!("{e}; several separated by commas"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks() {
        for ok in [
            "",
            "https://hooks.example.com/x?y=1",
            "http://127.0.0.1:8089/events",
            "HTTP://h",
        ] {
            assert_eq!(check_webhook(ok), Ok(()), "{ok}");
        }
        for bad in [
            "hooks.example.com",
            "ftp://h/x",
            "https://",
            " https://h",
            "https://h/a b",
            "mailto:a@b.c",
        ] {
            assert!(check_webhook(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        for ok in [
            "",
            "a@b.c",
            "a@b.c, d@e.f",
            "ops@example.com,dev@example.com",
        ] {
            assert_eq!(check_email_list(ok), Ok(()), "{ok}");
        }
        for bad in [
            "a",
            "a@",
            "@b",
            "a@b.c,",
            "a@b.c,,d@e.f",
            "a b@c.d",
            "<a@b.c>",
            "a@b@c",
        ] {
            assert!(check_email_list(bad).is_err(), "{bad}");
        }
    }
}
