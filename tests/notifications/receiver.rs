//! The loopback HTTP receiver the delivery, e-mail API and routing tests send to: it records
//! every request and answers from a script (in order; the last answer repeats).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Clone)]
pub enum Answer {
    Status(u16, Vec<(&'static str, String)>, &'static str),
    /// Never answer (within the test): the sender's timeout must fire.
    Hang,
}

/// `code` with `headers` and `body`.
pub fn answer(code: u16, headers: Vec<(&'static str, &'static str)>, body: &'static str) -> Answer {
    Answer::Status(
        code,
        headers
            .into_iter()
            .map(|(n, v)| (n, v.to_owned()))
            .collect(),
        body,
    )
}

pub fn ok() -> Answer {
    answer(200, vec![], "ok")
}

#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name}"))
            .to_str()
            .unwrap()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Clone, Default)]
pub struct Receiver {
    script: Arc<Mutex<VecDeque<Answer>>>,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

async fn handle(
    State(r): State<Receiver>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    r.got.lock().unwrap().push(Received {
        method,
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let next = {
        let mut s = r.script.lock().unwrap();
        if s.len() > 1 {
            s.pop_front().unwrap()
        } else {
            s.front().cloned().unwrap_or_else(ok)
        }
    };
    match next {
        Answer::Status(code, headers, body) => {
            let mut resp = (StatusCode::from_u16(code).unwrap(), body).into_response();
            for (n, v) in headers {
                resp.headers_mut().insert(n, v.parse().unwrap());
            }
            resp
        }
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            (StatusCode::OK, "late").into_response()
        }
    }
}

/// Starts a receiver answering `script`; returns it and its base URL.
pub async fn receiver(script: Vec<Answer>) -> (Receiver, String) {
    let r = Receiver {
        script: Arc::new(Mutex::new(script.into())),
        ..Receiver::default()
    };
    let app = Router::new().fallback(handle).with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (r, format!("http://{addr}"))
}
