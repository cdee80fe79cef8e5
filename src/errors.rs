//! Error text for people: one formatter of an error and its causes, used by every client
//! (Gateway, Dashboard, Redis, webhooks, e-mail).

/// `error: cause: cause`, skipping causes already contained in the text (reqwest and lettre
/// repeat them; their `Display` alone often hides the cause).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}
