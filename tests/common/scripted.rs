//! One scripted HTTP endpoint for what moto cannot do: a test gives a script that answers each
//! request (knowing every request seen so far), points a client at the endpoint's URL, and reads
//! back what was sent. The S3 tests script refusals midway through a multipart copy; the Lambda
//! contract tests script function errors, throttling and garbage payloads.

use percent_encoding::percent_decode_str;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One request as the endpoint received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path as sent (percent-encoded).
    pub raw_path: String,
    pub query: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// The body as JSON (`Null` when it is not).
    pub json: Value,
    /// Which connection it came on: 1 for the first the endpoint accepted, and so on.
    pub connection: usize,
    /// Requests being answered when it arrived, itself included.
    pub in_flight: usize,
}

impl Request {
    /// `METHOD path?query`, as on the request line.
    pub fn line(&self) -> String {
        match self.query.as_str() {
            "" => format!("{} {}", self.method, self.raw_path),
            query => format!("{} {}?{query}", self.method, self.raw_path),
        }
    }

    /// The path, percent-decoded.
    pub fn path(&self) -> String {
        percent_decode_str(&self.raw_path)
            .decode_utf8_lossy()
            .into_owned()
    }
}

/// What the endpoint answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// How long the endpoint takes before it answers.
    pub delay: Option<std::time::Duration>,
}

impl Reply {
    pub fn new(status: u16, headers: &[(&str, &str)], body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            body: body.into(),
            delay: None,
        }
    }

    /// The same answer, given after `delay`.
    pub fn after(self, delay: std::time::Duration) -> Reply {
        Reply {
            delay: Some(delay),
            ..self
        }
    }

    /// An S3-style XML answer.
    pub fn xml(status: u16, body: &str) -> Reply {
        Reply::new(status, &[("content-type", "application/xml")], body)
    }

    /// An answer with headers and no body (a HEAD answer declares its `content-length`).
    pub fn empty(status: u16, headers: &[(&str, &str)]) -> Reply {
        Reply::new(status, headers, "")
    }
}

/// Every request the endpoint received, in order.
pub type Log = Arc<Mutex<Vec<Request>>>;

/// Starts the endpoint on a free loopback port; returns its URL and its log. `script` answers a
/// request given the log so far (this request last).
pub async fn start(
    script: impl Fn(&Request, &[Request]) -> Reply + Send + Sync + 'static,
) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let script = Arc::new(script);
    let server_log = log.clone();
    let in_flight = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        let mut accepted = 0;
        while let Ok((socket, _)) = listener.accept().await {
            accepted += 1;
            let log = server_log.clone();
            let script = script.clone();
            let in_flight = in_flight.clone();
            tokio::spawn(async move { serve(socket, accepted, &in_flight, &log, &*script).await });
        }
    });
    (url, log)
}

/// Answers the requests of one connection until the client closes it.
async fn serve(
    socket: TcpStream,
    connection: usize,
    in_flight: &AtomicUsize,
    log: &Log,
    script: &(dyn Fn(&Request, &[Request]) -> Reply + Send + Sync),
) {
    let mut socket = BufReader::new(socket);
    while let Some(mut request) = read_request(&mut socket, connection).await {
        request.in_flight = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let reply = {
            let mut seen = log.lock().unwrap();
            seen.push(request.clone());
            script(&request, &seen)
        };
        if let Some(delay) = reply.delay {
            tokio::time::sleep(delay).await;
        }
        in_flight.fetch_sub(1, Ordering::SeqCst);
        let mut head = format!("HTTP/1.1 {} Scripted\r\n", reply.status);
        for (name, value) in &reply.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        // A HEAD answer declares the object's length itself; a 204 has none.
        let declared = reply
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-length"));
        if !declared && reply.status != 204 {
            head.push_str(&format!("content-length: {}\r\n", reply.body.len()));
        }
        head.push_str("\r\n");
        let stream = socket.get_mut();
        if stream.write_all(head.as_bytes()).await.is_err()
            || stream.write_all(reply.body.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

async fn read_request(socket: &mut BufReader<TcpStream>, connection: usize) -> Option<Request> {
    let mut line = String::new();
    if socket.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let (raw_path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        socket.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    socket.read_exact(&mut body).await.ok()?;
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Some(Request {
        method,
        raw_path,
        query,
        headers,
        body,
        json,
        connection,
        in_flight: 0,
    })
}
