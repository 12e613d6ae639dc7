//! A hand-driven QUIC client for the cases the real agent never produces:
//! no client certificate, another protocol version, oversized frames.

use std::time::Duration;

use gdx_certs::pki::pem_blocks;
use gdx_common::wire::{self, Hello, Message};
use gdx_common::{NodeId, Role};
use gdx_link::frames;
use rustls::pki_types::CertificateDer;

/// What the hub did with what we sent.
#[derive(Debug)]
pub enum Outcome {
    /// The hub answered with a message.
    Answer(Message),
    /// The connection failed or closed; the sentence the user would see.
    Closed(String),
}

/// A client endpoint on 127.0.0.1 trusting `root_pem`, presenting the agent
/// identity in `agent_dir` (or none). Call inside a runtime.
fn endpoint(root_pem: &str, agent_dir: Option<&std::path::Path>) -> quinn::Endpoint {
    endpoint_as(root_pem, agent_dir.map(|d| (d.join("agent.crt"), d.join("agent.key"))))
}

/// A client endpoint presenting the certificate chain and key in `identity`.
fn endpoint_as(root_pem: &str, identity: Option<(std::path::PathBuf, std::path::PathBuf)>) -> quinn::Endpoint {
    let root = CertificateDer::from(pem_blocks(root_pem, "CERTIFICATE").remove(0));
    let identity = identity.map(|(cert, key)| {
        let chain = pem_blocks(&std::fs::read_to_string(cert).unwrap(), "CERTIFICATE")
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        let key = gdx_certs::pki::key_from_pem(&std::fs::read_to_string(key).unwrap(), "key").unwrap();
        (chain, key.serialize_der())
    });
    let config = gdx_certs::tls::node_client_config(identity, &[root], None).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(config);
    endpoint
}

/// Connects to `addr` trusting `root_pem`, with the agent identity in
/// `agent_dir` (or none), sends `frame` on a new stream, and reports the answer.
pub fn exchange(addr: &str, root_pem: &str, agent_dir: Option<&std::path::Path>, frame: Vec<u8>) -> Outcome {
    gdx_certs::install_crypto_provider();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let endpoint = endpoint(root_pem, agent_dir);
        let conn = match endpoint.connect(addr.parse().unwrap(), gdx_certs::tls::hub_server_name()).unwrap().await {
            Ok(c) => c,
            Err(e) => return Outcome::Closed(frames::describe_connection_error(&e)),
        };
        let result = tokio::time::timeout(Duration::from_secs(10), async {
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| frames::describe_connection_error(&e))?;
            send.write_all(&frame).await.map_err(|e| e.to_string())?;
            frames::recv(&mut recv).await.map_err(|e| e.to_string())
        })
        .await;
        let outcome = match result {
            Ok(Ok(Some(m))) => Outcome::Answer(m),
            Ok(Ok(None)) => Outcome::Closed("stream finished".into()),
            Ok(Err(e)) => match conn.close_reason() {
                Some(r) => Outcome::Closed(frames::describe_connection_error(&r)),
                None => Outcome::Closed(e),
            },
            Err(_) => Outcome::Closed("no answer within 10 s".into()),
        };
        conn.close(0u32.into(), b"test done");
        outcome
    })
}

/// Two connections of the agent in `agent_dir`: the older finishes its
/// handshake first but says hello only after the newer one was welcomed (a
/// stale reconnect arriving late). Returns how the older one ended and
/// whether the newer one is still open a second later.
pub fn late_hello(addr: &str, root_pem: &str, agent_dir: &std::path::Path, node: &str) -> (String, bool) {
    gdx_certs::install_crypto_provider();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dial = async || {
            let endpoint = endpoint(root_pem, Some(agent_dir));
            let conn =
                endpoint.connect(addr.parse().unwrap(), gdx_certs::tls::hub_server_name()).unwrap().await.unwrap();
            (endpoint, conn)
        };
        let hello = async |conn: &quinn::Connection| {
            let (mut send, mut recv) = conn.open_bi().await.unwrap();
            send.write_all(&hello_frame(node, wire::PROTOCOL_VERSION)).await.unwrap();
            frames::recv(&mut recv).await
        };
        let (_older_endpoint, older) = dial().await;
        let (_newer_endpoint, newer) = dial().await;
        assert!(matches!(hello(&newer).await, Ok(Some(Message::Welcome(_)))), "the newer connection is welcomed");
        let _ = hello(&older).await;
        let ended = tokio::time::timeout(Duration::from_secs(10), older.closed()).await;
        let older_end = match ended {
            Ok(reason) => frames::describe_connection_error(&reason),
            Err(_) => "still open after 10 s".into(),
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let newer_open = newer.close_reason().is_none();
        newer.close(0u32.into(), b"test done");
        (older_end, newer_open)
    })
}

/// A hello frame for `node`, with the protocol version field set to `version`.
pub fn hello_frame(node: &str, version: u16) -> Vec<u8> {
    let mut frame = wire::encode_frame(&Message::Hello(Hello {
        node: NodeId::parse(node).unwrap(),
        role: Role::Agent,
        software: "raw test client".into(),
        probe: false,
    }))
    .unwrap();
    frame[4..6].copy_from_slice(&version.to_be_bytes());
    frame
}

/// Connects as the agent in `agent_dir`, says hello (as a probe), then sends
/// `frames` on one upload stream and collects one answer per frame.
pub fn upload(
    addr: &str,
    root_pem: &str,
    agent_dir: &std::path::Path,
    node: &str,
    frames_out: Vec<Vec<u8>>,
) -> Vec<Message> {
    let identity = (agent_dir.join("agent.crt"), agent_dir.join("agent.key"));
    upload_as(addr, root_pem, identity, node, Role::Agent, frames_out)
}

/// [`upload`] as any node: `identity` holds the paths of its certificate chain and key.
pub fn upload_as(
    addr: &str,
    root_pem: &str,
    identity: (std::path::PathBuf, std::path::PathBuf),
    node: &str,
    role: Role,
    frames_out: Vec<Vec<u8>>,
) -> Vec<Message> {
    gdx_certs::install_crypto_provider();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let endpoint = endpoint_as(root_pem, Some(identity));
        let conn = endpoint.connect(addr.parse().unwrap(), gdx_certs::tls::hub_server_name()).unwrap().await.unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let hello = Message::Hello(Hello {
            node: NodeId::parse(node).unwrap(),
            role,
            software: "raw test client".into(),
            probe: true,
        });
        frames::send(&mut send, &hello).await.unwrap();
        assert!(matches!(frames::recv(&mut recv).await.unwrap(), Some(Message::Welcome(_))));
        let (mut up, mut down) = conn.open_bi().await.unwrap();
        let mut answers = Vec::new();
        for f in frames_out {
            up.write_all(&f).await.unwrap();
            match tokio::time::timeout(Duration::from_secs(10), frames::recv(&mut down)).await {
                Ok(Ok(Some(m))) => answers.push(m),
                other => panic!("no answer: {other:?}"),
            }
        }
        conn.close(0u32.into(), b"test done");
        answers
    })
}

/// Connects as the agent in `agent_dir`, is welcomed as a probe (a one-shot
/// command's connection), runs `meanwhile`, and reports how the connection
/// ended within `wait` ("still open" if it did not).
pub fn probe_until_closed(
    addr: &str,
    root_pem: &str,
    agent_dir: &std::path::Path,
    node: &str,
    meanwhile: impl FnOnce(),
    wait: Duration,
) -> String {
    gdx_certs::install_crypto_provider();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (endpoint, conn) = rt.block_on(async {
        let endpoint = endpoint(root_pem, Some(agent_dir));
        let conn = endpoint.connect(addr.parse().unwrap(), gdx_certs::tls::hub_server_name()).unwrap().await.unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let hello =
            Hello { node: NodeId::parse(node).unwrap(), role: Role::Agent, software: "raw".into(), probe: true };
        frames::send(&mut send, &Message::Hello(hello)).await.unwrap();
        assert!(matches!(frames::recv(&mut recv).await.unwrap(), Some(Message::Welcome(_))));
        (endpoint, conn)
    });
    meanwhile();
    let ended = rt.block_on(async {
        match tokio::time::timeout(wait, conn.closed()).await {
            Ok(reason) => frames::describe_connection_error(&reason),
            Err(_) => "still open".to_owned(),
        }
    });
    drop(endpoint);
    ended
}

/// Opens `n` enrolment connections (no certificate) to `addr`, one after
/// the other; each that the hub takes announces a 16 MiB frame, sends 1 KiB
/// of it and stalls. Returns how many the hub refused at once, and how each
/// of the others ended within `wait`.
pub fn stall_unproven(addr: &str, root_pem: &str, n: usize, wait: Duration) -> (usize, Vec<String>) {
    gdx_certs::install_crypto_provider();
    let root = pem_blocks(root_pem, "CERTIFICATE").remove(0);
    let fingerprint: [u8; 32] = gdx_certs::pki::sha256(&root);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        endpoint.set_default_client_config(
            gdx_certs::tls::enrol_client_config(fingerprint, &NodeId::parse("630000/hub").unwrap()).unwrap(),
        );
        let (mut refused, mut taken) = (0, Vec::new());
        for _ in 0..n {
            let conn = match endpoint.connect(addr.parse().unwrap(), gdx_certs::tls::hub_server_name()).unwrap().await {
                Ok(c) => c,
                Err(_) => {
                    refused += 1;
                    continue;
                }
            };
            let (mut send, recv) = conn.open_bi().await.unwrap();
            let mut partial = (16u32 * 1024 * 1024).to_be_bytes().to_vec();
            partial.extend_from_slice(&[0u8; 1024]);
            send.write_all(&partial).await.unwrap();
            taken.push((conn, send, recv));
        }
        let mut ended = Vec::new();
        for (conn, _send, _recv) in &taken {
            ended.push(match tokio::time::timeout(wait, conn.closed()).await {
                Ok(reason) => frames::describe_connection_error(&reason),
                Err(_) => "still open".to_owned(),
            });
        }
        (refused, ended)
    })
}
