//! Headless Chromium driven over the DevTools protocol: open a page, record every request it
//! makes, evaluate JavaScript against the rendered page, take a screenshot. Debian's `chromium`
//! package, started with the flags that keep it off the network (`.ci/run` installs it).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::tempdir::TempDir;

/// A browser process with one page; killed when dropped.
pub struct Browser {
    child: Child,
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    /// Every request the page sent (`Network.requestWillBeSent`), by URL, in order.
    pub requests: Vec<String>,
    _profile: TempDir,
}

/// The executable: `CHROMIUM` if set, else the first of the usual names on PATH.
fn executable() -> String {
    if let Ok(path) = std::env::var("CHROMIUM") {
        return path;
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            return name.to_owned();
        }
    }
    panic!(
        "headless Chromium is needed for this test: apt-get install -y chromium (.ci/run does), \
         or set CHROMIUM to its path"
    );
}

impl Browser {
    /// Starts Chromium (window `width` x `height`) and attaches to a blank page.
    pub async fn start(width: u32, height: u32) -> Self {
        let profile = TempDir::new("recon-chromium");
        let mut child = Command::new(executable())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                &format!("--window-size={width},{height}"),
                &format!("--user-data-dir={}", profile.path().display()),
                "about:blank",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        // Chromium prints where its DevTools endpoint listens on stderr.
        let stderr = child.stderr.take().expect("stderr");
        let (found, endpoint) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(at) = line.find("ws://") {
                    sent = found.send(line[at..].trim().to_owned()).is_ok();
                }
            }
        });
        let url = endpoint
            .recv_timeout(Duration::from_secs(60))
            .expect("chromium printed its DevTools endpoint");
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("connect to chromium");
        let mut browser = Self {
            child,
            socket,
            session: String::new(),
            next_id: 0,
            requests: Vec::new(),
            _profile: profile,
        };
        let target = browser
            .call("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = browser
            .call(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        browser.session = attached["sessionId"]
            .as_str()
            .expect("session id")
            .to_owned();
        browser.call("Network.enable", json!({})).await;
        browser.call("Page.enable", json!({})).await;
        browser
    }

    /// Sends a command (to the page once attached) and returns its result, recording the
    /// events that arrive meanwhile.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("send to chromium");
        loop {
            let reply = self.receive().await;
            if reply["id"] == json!(id) {
                assert!(
                    reply.get("error").is_none(),
                    "{method} failed: {}",
                    reply["error"]
                );
                return reply["result"].clone();
            }
        }
    }

    /// The next message, recording requests.
    async fn receive(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(60), self.socket.next())
                .await
                .expect("chromium answered within 60 s")
                .expect("chromium connection open")
                .expect("chromium message");
            let Message::Text(text) = frame else {
                continue;
            };
            let message: Value = serde_json::from_str(&text).expect("chromium sends JSON");
            if message["method"] == "Network.requestWillBeSent"
                && let Some(url) = message["params"]["request"]["url"].as_str()
            {
                self.requests.push(url.to_owned());
            }
            return message;
        }
    }

    /// Navigates to `url` and waits for its load event.
    pub async fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        loop {
            let message = self.receive().await;
            if message["method"] == "Page.loadEventFired" {
                return;
            }
        }
    }

    /// Evaluates `expression` in the page and returns its value (JSON-serialisable).
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "script failed: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Saves a PNG screenshot of the whole page.
    pub async fn screenshot(&mut self, path: &Path) {
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 screenshot");
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Lays the page out as printed on paper `width_mm` wide with 12 mm margins (the report's
    /// `@page` margin): print media, and a viewport as wide as the printable area.
    pub async fn emulate_print(&mut self, width_mm: f64) {
        let px = ((width_mm - 24.0) / 25.4 * 96.0).floor();
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": px as u32, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
        self.call("Emulation.setEmulatedMedia", json!({"media": "print"}))
            .await;
    }

    /// Prints the page to PDF on paper `width_in` x `height_in` inches; returns the PDF.
    pub async fn print_pdf(&mut self, width_in: f64, height_in: f64) -> Vec<u8> {
        let pdf = self
            .call(
                "Page.printToPDF",
                json!({"paperWidth": width_in, "paperHeight": height_in, "printBackground": true}),
            )
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(pdf["data"].as_str().expect("pdf data"))
            .expect("base64 pdf")
    }

    /// The page's requests grouped by URL scheme (`file`, `data`, `http`...).
    pub fn requests_by_scheme(&self) -> HashMap<String, Vec<String>> {
        let mut by: HashMap<String, Vec<String>> = HashMap::new();
        for url in &self.requests {
            let scheme = url.split(':').next().unwrap_or("").to_owned();
            by.entry(scheme).or_default().push(url.clone());
        }
        by
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
