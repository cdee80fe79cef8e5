//! The full RFC 5322 message: `multipart/alternative` with the text and HTML twins, built by
//! lettre (which encodes headers and bodies), so nothing rendered reaches a header unencoded.

use std::str::FromStr;

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
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

/// Right-hand side of generated Message-IDs.
const ID_DOMAIN: &str = "tykwatch";

/// Builds the message. `message_id` is either an explicit Message-ID (`left@right`, with or
/// without `<>`; ASCII atext only) or a notification id without `@` (the outbox idempotency
/// key): that one is encoded with [`crate::outbox::encode_id`] (`:` → `=`), becomes
/// `<encoded@tykwatch>`, and is also sent raw in `X-Tykwatch-Id`. Either way the id is the
/// same on every retry, so receivers can drop duplicates.
pub fn build_message(
    email: &RenderedEmail,
    from: &Mailbox,
    to: &[String],
    message_id: &str,
) -> Result<Message, TemplateError> {
    if to.is_empty() {
        return Err(TemplateError::new(ErrorKind::Message, "no recipients"));
    }
    let (header, raw_id) = message_id_header(message_id)?;
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(sanitize_header(&email.subject))
        .message_id(Some(header));
    if let Some(raw) = raw_id {
        // The raw id passed encode_id's alphabet check: no CR/LF, nothing to encode.
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(crate::outbox::ID_HEADER),
            raw,
        ));
    }
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

/// `<left@right>` from an id, and the raw notification id when it was one (see
/// [`build_message`]). Only RFC 5322 `atext` and dots reach the header, so an id can never
/// break out of it.
fn message_id_header(id: &str) -> Result<(String, Option<String>), TemplateError> {
    let bare = id.trim().trim_start_matches('<').trim_end_matches('>');
    let bad = || {
        TemplateError::new(
            ErrorKind::Message,
            format!("Message-ID {id:?} must be an ASCII token like notification-id@host"),
        )
    };
    let Some((left, right)) = bare.split_once('@') else {
        let encoded = crate::outbox::encode_id(bare).ok_or_else(bad)?;
        return Ok((format!("<{encoded}@{ID_DOMAIN}>"), Some(bare.to_owned())));
    };
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c);
    let ok = |s: &str| !s.is_empty() && s.chars().all(atext);
    if !ok(left) || !ok(right) || bare.len() > 900 {
        return Err(bad());
    }
    Ok((format!("<{left}@{right}>"), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids() {
        let header = |id: &str| message_id_header(id).map(|(h, _)| h);
        assert_eq!(header("abc").unwrap(), "<abc@tykwatch>");
        assert_eq!(header("<a.b@c.d>").unwrap(), "<a.b@c.d>");
        assert!(header("a b").is_err());
        assert!(header("a\r\nBcc: x@y").is_err());
        assert!(header("").is_err());
        // An idempotency key: ':' is not atext, so it is encoded; the raw id rides along.
        let key = "q:key:0f3a:1900000000:87.5:email:ops";
        assert_eq!(
            message_id_header(key).unwrap(),
            (
                "<q=key=0f3a=1900000000=87.5=email=ops@tykwatch>".to_owned(),
                Some(key.to_owned())
            )
        );
        assert_eq!(message_id_header("<a.b@c.d>").unwrap().1, None);
    }

    #[test]
    fn notification_ids_are_in_a_header_of_their_own() {
        let email = RenderedEmail {
            subject: "s".into(),
            text: "t".into(),
            html: "<p>h</p>".into(),
        };
        let from: Mailbox = "a@example.com".parse().unwrap();
        let to = vec!["b@example.com".to_owned()];
        let eml = to_eml(&email, &from, &to, "q:org:o1:5:80:email:ops").unwrap();
        assert!(eml.contains("Message-ID: <q=org=o1=5=80=email=ops@tykwatch>\r\n"));
        assert!(eml.contains("X-Tykwatch-Id: q:org:o1:5:80:email:ops\r\n"));
        let eml = to_eml(&email, &from, &to, "x@tykwatch").unwrap();
        assert!(!eml.contains("X-Tykwatch-Id"));
    }
}
