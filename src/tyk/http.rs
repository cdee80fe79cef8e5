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
            Err(e) => return Err(BodyError::Truncated(request_error(&e))),
        }
    }
}

/// `scheme://host[:port]/…`: where a request went, without the path (it may hold a key). The
/// port stays: "connection refused" at the wrong port is the usual mistake.
fn origin(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}/…", url.scheme()),
        None => format!("{}://{host}/…", url.scheme()),
    }
}

/// [`crate::errors::chain`] of a reqwest error with its URL cut to scheme, host and port: a Gateway URL
/// carries the raw API key (`/tyk/keys/<key>`), and these messages reach the console.
pub fn request_error(e: &reqwest::Error) -> String {
    let text = crate::errors::chain(e);
    match e.url() {
        Some(url) => text.replace(url.as_str(), &origin(url)),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn origins_keep_the_port_and_drop_the_path() {
        let u = |s: &str| reqwest::Url::parse(s).expect("url");
        assert_eq!(
            origin(&u("http://127.0.0.1:8080/tyk/keys/secret-key?x=1")),
            "http://127.0.0.1:8080/…"
        );
        assert_eq!(
            origin(&u("https://gw.example/tyk/keys")),
            "https://gw.example/…"
        );
        assert_eq!(origin(&u("http://[::1]:9/x")), "http://[::1]:9/…");
    }
}
