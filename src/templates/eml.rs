//! The full RFC 5322 message: `multipart/alternative` with the text and HTML twins, built by
//! lettre (which encodes headers and bodies), so nothing rendered reaches a header unencoded.

use std::str::FromStr;

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

use super::{ErrorKind, RenderedEmail, TemplateError, sanitize_header};
use crate::config::EmailBackendConfig;

/// Used when `email_backend.default_from_email` is empty.
const FALLBACK_FROM: &str = "tykwatch@localhost";

/// The sender from tyk_analytics.conf-style settings: `default_from_name
/// <default_from_email>`.
pub fn from_mailbox(cfg: &EmailBackendConfig) -> Result<Mailbox, TemplateError> {
    let email = match cfg.default_from_email.trim() {
        "" => FALLBACK_FROM,
        e => e,
    };
    let address = email.parse().map_err(|e| {
        TemplateError::new(
            ErrorKind::Message,
            format!("email_backend.default_from_email {email:?} is not an address: {e}"),
        )
    })?;
    let name = sanitize_header(&cfg.default_from_name);
    Ok(Mailbox::new((!name.is_empty()).then_some(name), address))
}

/// Builds the message. `message_id` is the notification's idempotency key (with or without
/// `<>`; `@tykwatch` is appended when it has no domain), identical across retries.
pub fn build_message(
    email: &RenderedEmail,
    from: &Mailbox,
    to: &[String],
    message_id: &str,
) -> Result<Message, TemplateError> {
    if to.is_empty() {
        return Err(TemplateError::new(ErrorKind::Message, "no recipients"));
    }
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(sanitize_header(&email.subject))
        .message_id(Some(message_id_header(message_id)?));
    for addr in to {
        let mailbox = Mailbox::from_str(addr.trim()).map_err(|e| {
            TemplateError::new(
                ErrorKind::Message,
                format!("invalid recipient address {addr:?}: {e}"),
            )
        })?;
        builder = builder.to(mailbox);
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|e| {
            TemplateError::new(ErrorKind::Message, format!("cannot build the e-mail: {e}"))
        })
}

/// The message as an `.eml` file (CRLF line ends, as sent).
pub fn to_eml(
    email: &RenderedEmail,
    from: &Mailbox,
    to: &[String],
    message_id: &str,
) -> Result<String, TemplateError> {
    let message = build_message(email, from, to, message_id)?;
    Ok(String::from_utf8_lossy(&message.formatted()).into_owned())
}

/// `<left@right>` from an id; only RFC 5322 `atext` and dots are accepted, so an id can never
/// break out of the header.
fn message_id_header(id: &str) -> Result<String, TemplateError> {
    let bare = id.trim().trim_start_matches('<').trim_end_matches('>');
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c);
    let (left, right) = bare.split_once('@').unwrap_or((bare, "tykwatch"));
    let ok = |s: &str| !s.is_empty() && s.chars().all(atext);
    if !ok(left) || !ok(right) || bare.len() > 900 {
        return Err(TemplateError::new(
            ErrorKind::Message,
            format!("Message-ID {id:?} must be an ASCII token like notification-id@host"),
        ));
    }
    Ok(format!("<{left}@{right}>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids() {
        assert_eq!(message_id_header("abc").unwrap(), "<abc@tykwatch>");
        assert_eq!(message_id_header("<a.b@c.d>").unwrap(), "<a.b@c.d>");
        assert!(message_id_header("a b").is_err());
        assert!(message_id_header("a\r\nBcc: x@y").is_err());
        assert!(message_id_header("").is_err());
    }
}
