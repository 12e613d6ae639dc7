//! The local HTTP address where Prometheus scrapes a hub or an agent:
//! `GET /metrics` answers the text exposition format, anything else 404.
//! A request is read within 5 s and 8 KiB, or the connection is dropped;
//! nothing of it is decoded beyond the request line. Four scrapes are
//! served at once (more connections are closed), and the text is made by
//! one at a time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What a scrape answers: the metrics as text, made at each request.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

const MAX_REQUEST: usize = 8 * 1024;
/// Scrapes served at once.
const MAX_CONNECTIONS: usize = 4;

/// Binds `addr` (an error names it) and serves scrapes until the task is dropped.
pub async fn bind(addr: &str, render: Render) -> Result<(SocketAddr, impl Future<Output = ()> + use<>), String> {
    let addr: SocketAddr = addr.parse().map_err(|_| format!("metrics = {addr:?} is not an IP:PORT address"))?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for metrics on {addr}: {e}; change metrics in the config file"))?;
    let local = listener.local_addr().unwrap_or(addr);
    // a few scrapes at once; more are dropped, and the text is made one at a time
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let rendering = Arc::new(std::sync::Mutex::new(()));
    Ok((local, async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // out of file descriptors, say: wait rather than spin
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else { continue };
            let (render, rendering) = (render.clone(), rendering.clone());
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), answer(stream, render, rendering)).await;
                drop(permit);
            });
        }
    }))
}

async fn answer(
    mut stream: tokio::net::TcpStream,
    render: Render,
    rendering: Arc<std::sync::Mutex<()>>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || buf.len() + n > MAX_REQUEST {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = buf.split(|b| *b == b'\r').next().unwrap_or_default();
    let (status, body) = match line {
        b"GET /metrics HTTP/1.1" | b"GET /metrics HTTP/1.0" => {
            let body = tokio::task::spawn_blocking(move || {
                let _one = rendering.lock();
                render()
            })
            .await
            .unwrap_or_default();
            ("200 OK", body)
        }
        _ => ("404 Not Found", "metrics are at GET /metrics\n".to_owned()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
