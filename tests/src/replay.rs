//! Replays frames recorded at a hub of an older version
//! (tests/fixtures/protocol-N/record.sh) against a hub of this one, as a
//! node of that version would send them, and collects the answers next to
//! the answers recorded then.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;
use std::time::Duration;

use gdx_certs::pki::pem_blocks;
use gdx_common::wire::{self, LENGTH_PREFIX, Message};
use gdx_link::frames;
use rustls::pki_types::CertificateDer;

/// One frame as the recording hub saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// True for a frame the hub read, false for one it wrote.
    pub incoming: bool,
    /// The QUIC stream it travelled on, within its connection.
    pub stream: u64,
    /// The whole frame: length, version, payload.
    pub frame: Vec<u8>,
}

/// Reads a recording: one `in|out STREAM HEX` line per frame.
pub fn read(path: &Path) -> Vec<Recorded> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut parts = line.split(' ');
            let (dir, stream, hex) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
            let frame = gdx_common::audit::unhex(hex).unwrap_or_else(|| panic!("{}: not hex: {line}", path.display()));
            Recorded { incoming: dir == "in", stream: stream.parse().unwrap(), frame }
        })
        .collect()
}

/// What came back for one recorded answer.
#[derive(Debug)]
pub struct Answer {
    /// The frame this hub sent, whole.
    pub got: Vec<u8>,
    /// The frame the recording hub sent at the same place.
    pub recorded: Vec<u8>,
}

/// Replays `records` against the hub at `addr`, offering only `alpns`, as
/// the node whose certificate chain and key are the PEM files of `identity`
/// (trusting `root_pem`). A recorded `Hello` read by the hub begins a new
/// connection. Each stream's frames are written, and its answers read, in
/// the order the recording hub read and wrote them; a stream is finished
/// after its last frame. Returns the protocol version each connection
/// negotiated and the answers.
pub fn replay(
    addr: &str,
    root_pem: &str,
    identity: (&Path, &Path),
    alpns: &[&[u8]],
    records: &[Recorded],
) -> (Vec<u16>, Vec<Answer>) {
    gdx_certs::install_crypto_provider();
    let root = CertificateDer::from(pem_blocks(root_pem, "CERTIFICATE").remove(0));
    let chain = pem_blocks(&std::fs::read_to_string(identity.0).unwrap(), "CERTIFICATE")
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let key = gdx_certs::pki::key_from_pem(&std::fs::read_to_string(identity.1).unwrap(), "key").unwrap();
    let config =
        gdx_certs::tls::node_client_config_speaking(Some((chain, key.serialize_der())), &[root], None, alpns).unwrap();
    let is_hello =
        |r: &Recorded| r.incoming && matches!(wire::decode_frame(&r.frame), Ok(Some((Message::Hello(_), _))));
    let mut sessions: Vec<&[Recorded]> = Vec::new();
    let mut start = 0;
    for i in 1..=records.len() {
        if i == records.len() || is_hello(&records[i]) {
            sessions.push(&records[start..i]);
            start = i;
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        endpoint.set_default_client_config(config);
        let (mut versions, mut answers) = (Vec::new(), Vec::new());
        for session in sessions {
            let conn =
                endpoint.connect(addr.parse().unwrap(), gdx_certs::tls::hub_server_name()).unwrap().await.unwrap();
            versions.push(frames::protocol(&conn));
            let last_in: HashMap<u64, usize> =
                session.iter().enumerate().filter(|(_, r)| r.incoming).map(|(i, r)| (r.stream, i)).collect();
            let mut streams = HashMap::new();
            for (i, r) in session.iter().enumerate() {
                if r.incoming {
                    let (send, _) = match streams.entry(r.stream) {
                        Entry::Occupied(e) => e.into_mut(),
                        Entry::Vacant(e) => e.insert(conn.open_bi().await.unwrap()),
                    };
                    send.write_all(&r.frame).await.unwrap();
                    if last_in[&r.stream] == i {
                        let _ = send.finish();
                    }
                } else {
                    let (_, recv) = streams
                        .get_mut(&r.stream)
                        .unwrap_or_else(|| panic!("an answer on unopened stream {}", r.stream));
                    let got = tokio::time::timeout(Duration::from_secs(30), raw_frame(recv))
                        .await
                        .unwrap_or_else(|_| panic!("no answer within 30 s on stream {}", r.stream));
                    answers.push(Answer { got, recorded: r.frame.clone() });
                }
            }
            conn.close(0u32.into(), b"replay done");
        }
        endpoint.wait_idle().await;
        (versions, answers)
    })
}

/// Reads one whole frame without decoding it.
async fn raw_frame(recv: &mut quinn::RecvStream) -> Vec<u8> {
    let mut prefix = [0u8; LENGTH_PREFIX];
    recv.read_exact(&mut prefix).await.unwrap();
    let len = wire::body_len(prefix).unwrap();
    let mut frame = prefix.to_vec();
    frame.resize(LENGTH_PREFIX + len, 0);
    recv.read_exact(&mut frame[LENGTH_PREFIX..]).await.unwrap();
    frame
}
