//! Test support: start the real `switchyard` binary on port 0, and speak raw HTTP/1.x to it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running gateway process, killed on drop.
pub struct Gateway {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr_log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The models directory the tests use: `SWITCHYARD_MODELS_DIR` or the default cache dir.
pub fn models_dir() -> PathBuf {
    std::env::var_os("SWITCHYARD_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(switchyard_gateway::config::default_models_dir)
}

/// Whether the sample model is installed (the test command fetches it first).
pub fn require_model(id: &str) -> PathBuf {
    let dir = models_dir().join(id);
    assert!(
        dir.join("manifest.json").exists(),
        "model {id} is not installed in {}: run `switchyard models fetch` (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// Starts `switchyard serve` with `config` (TOML text) on 127.0.0.1:0 and waits until it listens.
pub fn start(config: &str, models_dir: &Path) -> Gateway {
    let log_dir = tempfile::tempdir().unwrap();
    let config_path = log_dir.path().join("switchyard.toml");
    std::fs::write(&config_path, config).unwrap();
    let stderr_log = log_dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config_path)
        .arg("--models-dir")
        .arg(models_dir)
        .env("SWITCHYARD_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_log).unwrap())
        .spawn()
        .expect("start switchyard");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("switchyard listening on http://")
        .unwrap_or_else(|| {
            panic!(
                "unexpected first line: {line:?}; stderr: {}",
                std::fs::read_to_string(&stderr_log).unwrap_or_default()
            )
        })
        .parse()
        .unwrap();
    Gateway {
        child,
        addr,
        stderr_log,
        _log_dir: log_dir,
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn write_request(stream: &mut TcpStream, method: &str, path: &str, body: &[u8]) {
    write_request_with(stream, method, path, &[], body);
}

fn write_request_with(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) {
    // HTTP/1.0: the server closes the connection at the end, so no chunked decoding is needed.
    let extra: String = extra.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
}

fn read_head(reader: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"))
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    (status, headers)
}

/// One request, whole response.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> Response {
    request_with(addr, method, path, &[], body)
}

/// One request with extra headers, whole response.
pub fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write_request_with(&mut stream, method, path, headers, body.as_bytes());
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    let mut body = String::new();
    reader.read_to_string(&mut body).unwrap();
    Response {
        status,
        headers,
        body,
    }
}

/// A streaming response read event by event.
pub struct EventStream {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
}

impl EventStream {
    /// The next `data:` payload and when it arrived; `None` at end of stream.
    pub fn next_data(&mut self) -> Option<(String, Instant)> {
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            if let Some(data) = line.trim_end().strip_prefix("data: ") {
                return Some((data.to_owned(), Instant::now()));
            }
        }
    }

    /// Everything left, as (payload, arrival) pairs.
    pub fn collect(mut self) -> Vec<(String, Instant)> {
        let mut out = Vec::new();
        while let Some(e) = self.next_data() {
            out.push(e);
        }
        out
    }

    /// Closes the connection (a client disconnect).
    pub fn disconnect(self) {
        let _ = self.reader.get_ref().shutdown(std::net::Shutdown::Both);
    }
}

/// Starts a streaming POST and reads the response head.
pub fn stream(addr: SocketAddr, path: &str, body: &str) -> EventStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write_request(&mut stream, "POST", path, body.as_bytes());
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    EventStream {
        status,
        headers,
        reader,
    }
}

/// Concatenated content of a chat stream's chunks, and the usage chunk if any.
pub fn chat_stream_text(events: &[(String, Instant)]) -> (String, Option<serde_json::Value>) {
    let mut text = String::new();
    let mut usage = None;
    for (data, _) in events {
        if data == "[DONE]" {
            break;
        }
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            text.push_str(c);
        }
        if let Some(c) = v["choices"][0]["text"].as_str() {
            text.push_str(c);
        }
        if !v["usage"].is_null() {
            usage = Some(v["usage"].clone());
        }
    }
    (text, usage)
}
