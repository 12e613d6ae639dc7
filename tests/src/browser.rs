//! A real headless Chromium (the Debian package `chromium`), driven over
//! the DevTools protocol on a WebSocket: pages are opened, forms filled
//! and submitted, text read and screenshots taken as a person's browser
//! would. Each [`Tab`] lives in a browser context of its own, so two
//! people's sessions (cookies) never mix. The hub's certificate is issued
//! by its own CA, which the browser is told to accept.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// The browser program, if installed.
pub fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// A running headless Chromium and its DevTools connection.
pub struct Browser {
    child: Child,
    socket: WebSocket<TcpStream>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium, or None (after a loud message) when it is not
    /// installed outside CI.
    pub fn start() -> Option<Self> {
        let exe = chromium();
        if crate::servers::may_skip("Chromium", exe.is_some()) {
            return None;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(exe?)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--ignore-certificate-errors",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--lang=zh-CN",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        // Chromium says where its DevTools listen on stderr
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split_whitespace().find(|w| w.starts_with("ws://")) {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let ws_url = rx.recv_timeout(Duration::from_secs(30)).expect("chromium printed no DevTools address");
        let hostport = ws_url.trim_start_matches("ws://").split('/').next().unwrap().to_owned();
        let stream = TcpStream::connect(&hostport).unwrap();
        let (socket, _) = tungstenite::client(ws_url.as_str(), stream).expect("DevTools WebSocket");
        Some(Self { child, socket, next_id: 0, _profile: profile })
    }

    /// Sends a DevTools command (to a page's session, if given) and waits for its answer.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.socket.send(Message::text(msg.to_string())).unwrap();
        loop {
            let Message::Text(text) = self.socket.read().expect("DevTools answer") else { continue };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("DevTools {method} failed: {e}");
                }
                return v["result"].clone();
            }
        }
    }

    /// A new tab in a browser context of its own (its own cookies).
    pub fn tab(&mut self) -> Tab<'_> {
        let context = self.call(None, "Target.createBrowserContext", json!({}))["browserContextId"].clone();
        let target = self.call(
            None,
            "Target.createTarget",
            json!({ "url": "about:blank", "browserContextId": context }),
        )["targetId"]
            .clone();
        let session =
            self.call(None, "Target.attachToTarget", json!({ "targetId": target, "flatten": true }))["sessionId"]
                .as_str()
                .unwrap()
                .to_owned();
        let mut tab = Tab { browser: self, session };
        tab.send("Page.enable", json!({}));
        tab.send(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
        );
        tab
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tab.
pub struct Tab<'b> {
    browser: &'b mut Browser,
    session: String,
}

impl Tab<'_> {
    fn send(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.browser.call(Some(&session), method, params)
    }

    /// The value of a JavaScript expression in the page.
    pub fn eval(&mut self, js: &str) -> Value {
        match self.try_eval(js) {
            Ok(v) => v,
            Err(e) => panic!("{js}: {e}"),
        }
    }

    /// Like [`Tab::eval`], but a page going away while it runs is an error, not a panic.
    fn try_eval(&mut self, js: &str) -> Result<Value, String> {
        self.browser.next_id += 1;
        let id = self.browser.next_id;
        let msg = json!({ "id": id, "sessionId": self.session, "method": "Runtime.evaluate",
            "params": { "expression": js, "returnByValue": true, "awaitPromise": true } });
        self.browser.socket.send(Message::text(msg.to_string())).unwrap();
        loop {
            let Message::Text(text) = self.browser.socket.read().expect("DevTools answer") else { continue };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] != id {
                continue;
            }
            if let Some(e) = v.get("error") {
                return Err(e.to_string());
            }
            if let Some(e) = v["result"].get("exceptionDetails") {
                return Err(e.to_string());
            }
            return Ok(v["result"]["result"]["value"].clone());
        }
    }

    /// Opens `url` and waits until the page has loaded.
    pub fn open(&mut self, url: &str) {
        self.eval("window.__gdx_old = 1");
        self.send("Page.navigate", json!({ "url": url }));
        self.wait_new_page(url);
    }

    /// Runs `js` (which submits a form or follows a link) and waits until
    /// the next page has loaded.
    pub fn act(&mut self, js: &str) {
        self.eval("window.__gdx_old = 1");
        self.eval(js);
        self.wait_new_page(js);
    }

    /// Waits until the page marked old is gone and the new one is complete.
    fn wait_new_page(&mut self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = self.try_eval("document.readyState === 'complete' && window.__gdx_old === undefined");
            if ready == Ok(json!(true)) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: no new page within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The page's visible text.
    pub fn text(&mut self) -> String {
        self.eval("document.body.innerText").as_str().unwrap_or_default().to_owned()
    }

    /// The page's address.
    pub fn url(&mut self) -> String {
        self.eval("location.href").as_str().unwrap_or_default().to_owned()
    }

    /// Saves a PNG of the whole page.
    pub fn screenshot(&mut self, path: &Path) {
        let r = self.send("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true }));
        let png = base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().unwrap()).unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}
