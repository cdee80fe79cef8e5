//! The shipped templates, embedded so the binary works from any directory. Keep this list in
//! step with `email_templates/` (a test compares the two).

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../email_templates/", $path)))),*]
    };
}

/// (path relative to `email_templates/`, contents).
pub(crate) const FILES: &[(&str, &str)] = embed![
    "api_event.html.tmpl",
    "api_event.subject",
    "api_event.text.tmpl",
    "key_event.html.tmpl",
    "key_event.subject",
    "key_event.text.tmpl",
    "key_request_approved.html.tmpl",
    "key_request_approved.subject",
    "key_request_approved.text.tmpl",
    "key_request_rejected.html.tmpl",
    "key_request_rejected.subject",
    "key_request_rejected.text.tmpl",
    "key_request_submitted.html.tmpl",
    "key_request_submitted.subject",
    "key_request_submitted.text.tmpl",
    "layout.html.tmpl",
    "password_reset.html.tmpl",
    "password_reset.subject",
    "password_reset.text.tmpl",
    "quota_exhausted.html.tmpl",
    "quota_exhausted.subject",
    "quota_exhausted.text.tmpl",
    "quota_threshold.html.tmpl",
    "quota_threshold.subject",
    "quota_threshold.text.tmpl",
    "quota_threshold_developer.html.tmpl",
    "quota_threshold_developer.subject",
    "quota_threshold_developer.text.tmpl",
    "test.html.tmpl",
    "test.subject",
    "test.text.tmpl",
    "welcome.html.tmpl",
    "welcome.subject",
    "welcome.text.tmpl",
    "samples/api_event.created.json",
    "samples/api_event.deleted.json",
    "samples/api_event.json",
    "samples/key_event.deleted.json",
    "samples/key_event.json",
    "samples/key_event.updated.json",
    "samples/key_request_approved.json",
    "samples/key_request_rejected.json",
    "samples/key_request_submitted.json",
    "samples/password_reset.dashboard.json",
    "samples/password_reset.json",
    "samples/quota_exhausted.json",
    "samples/quota_threshold.json",
    "samples/quota_threshold.key.json",
    "samples/quota_threshold.org.json",
    "samples/quota_threshold_developer.json",
    "samples/test.json",
    "samples/welcome.json",
];
