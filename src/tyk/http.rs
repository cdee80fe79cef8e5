//! What the Gateway and Dashboard clients share: reading a response body under a size cap, and
//! an error's whole cause chain for messages.

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Over the cap (announced by `Content-Length` or found while reading).
    TooLarge,
    Timeout,
    /// The connection broke mid-body; the cause chain.
    Truncated(String),
}

/// Reads the whole body, at most `max` bytes.
pub async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(4096).min(1 << 20) as usize);
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err(BodyError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) if e.is_timeout() => return Err(BodyError::Timeout),
            Err(e) => return Err(BodyError::Truncated(source_chain(&e))),
        }
    }
}

/// `error: cause: cause`, skipping causes already contained in the text (reqwest repeats them).
pub fn source_chain(e: &dyn std::error::Error) -> String {
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
