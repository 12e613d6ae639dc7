//! Wire frames on QUIC streams, and QUIC errors in words.
//!
//! [`send`] and [`recv`] move one [`Message`] at a time using the codec in
//! [`gdx_common::wire`]; the length prefix is checked before the body is
//! read, so an oversized frame costs nothing, and a frame's buffer grows
//! only as its bytes arrive, each piece within [`STALL_LIMIT`]. [`describe_connection_error`]
//! turns a closed connection into the sentence the other side gave, or into
//! advice when there is none.

use std::time::Duration;

use gdx_common::wire::{self, LENGTH_PREFIX, Message, WireError};

use gdx_certs::tls::{REFUSAL_CLOSE, REFUSAL_OPEN};

/// Failures moving frames.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The bytes are not a valid frame.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The connection closed; the text says why.
    #[error("{0}")]
    Closed(String),
    /// The stream ended in the middle of a frame.
    #[error("the peer closed the stream in the middle of a message")]
    Truncated,
    /// Nothing more of a begun frame arrived within [`STALL_LIMIT`].
    #[error("the peer sent nothing more of a message for 30 s; the link may be cut")]
    Stalled,
}

/// Sends one message.
pub async fn send(stream: &mut quinn::SendStream, msg: &Message) -> Result<(), FrameError> {
    let frame = wire::encode_frame(msg)?;
    stream.write_all(&frame).await.map_err(|e| match e {
        quinn::WriteError::ConnectionLost(c) => FrameError::Closed(describe_connection_error(&c)),
        other => FrameError::Closed(other.to_string()),
    })
}

/// Longest a message may stall once it has begun: every piece of it must
/// arrive within this of the one before (a 300 ms, 1 Mbit/s county link
/// moves a piece in well under a second).
pub const STALL_LIMIT: Duration = Duration::from_secs(30);

/// Bytes a message's buffer holds before more have arrived.
const FIRST_PIECE: usize = 64 * 1024;

/// Receives one message; `Ok(None)` when the peer finished the stream cleanly
/// between messages. Waiting for a message to begin is the caller's to
/// bound; once begun, it must keep arriving ([`STALL_LIMIT`]), and its
/// buffer grows only as its bytes arrive, whatever length it announced.
pub async fn recv(stream: &mut quinn::RecvStream) -> Result<Option<Message>, FrameError> {
    recv_after(stream, None).await
}

/// [`recv`], where the message must also begin within `idle` if given
/// ([`FrameError::Stalled`] otherwise); once begun, [`STALL_LIMIT`] rules.
pub async fn recv_after(stream: &mut quinn::RecvStream, idle: Option<Duration>) -> Result<Option<Message>, FrameError> {
    let mut prefix = [0u8; LENGTH_PREFIX];
    let first = stream.read(&mut prefix[..1]);
    let first = match idle {
        Some(limit) => tokio::time::timeout(limit, first).await.map_err(|_| FrameError::Stalled)?,
        None => first.await,
    };
    match first {
        Ok(Some(1)) => {}
        Ok(None) => return Ok(None),
        Ok(Some(_)) => return Err(FrameError::Truncated),
        Err(e) => return Err(read_error(quinn::ReadExactError::ReadError(e))),
    }
    within_stall(stream.read_exact(&mut prefix[1..])).await?.map_err(read_error)?;
    let len = wire::body_len(prefix)?;
    let mut body = Vec::with_capacity(len.min(FIRST_PIECE));
    while body.len() < len {
        match within_stall(stream.read_chunk(len - body.len(), true)).await? {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk.bytes),
            Ok(None) => return Err(FrameError::Truncated),
            Err(e) => return Err(read_error(quinn::ReadExactError::ReadError(e))),
        }
    }
    Ok(Some(wire::decode_body(&body)?))
}

async fn within_stall<T>(read: impl std::future::Future<Output = T>) -> Result<T, FrameError> {
    tokio::time::timeout(STALL_LIMIT, read).await.map_err(|_| FrameError::Stalled)
}

fn read_error(e: quinn::ReadExactError) -> FrameError {
    match e {
        quinn::ReadExactError::FinishedEarly(_) => FrameError::Truncated,
        quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(c)) => {
            FrameError::Closed(describe_connection_error(&c))
        }
        quinn::ReadExactError::ReadError(other) => FrameError::Closed(other.to_string()),
    }
}

/// The protocol version of an established connection: the newest both
/// sides offered in ALPN (`gdx/N`), and the oldest this build speaks when
/// the handshake named none.
pub fn protocol(conn: &quinn::Connection) -> u16 {
    conn.handshake_data()
        .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|h| h.protocol)
        .and_then(|alpn| wire::alpn_version(&alpn))
        .unwrap_or(wire::OLDEST_PROTOCOL_VERSION)
}

/// One sentence for a user about why a connection ended or never started.
pub fn describe_connection_error(e: &quinn::ConnectionError) -> String {
    use quinn::ConnectionError as E;
    match e {
        E::ApplicationClosed(c) => {
            let reason = String::from_utf8_lossy(&c.reason).into_owned();
            if reason.is_empty() { "the peer closed the connection".to_owned() } else { reason }
        }
        E::ConnectionClosed(c) => refusal_in(&String::from_utf8_lossy(&c.reason))
            .unwrap_or_else(|| format!("the peer closed the connection: {c}")),
        E::TransportError(t) => refusal_in(&t.reason).unwrap_or_else(|| format!("the connection failed: {t}")),
        E::TimedOut => "the other side stopped answering (nothing heard for 20 s); check that it is running and that UDP passes between the two machines on the port dialled".to_owned(),
        E::LocallyClosed => "the connection was closed by this program".to_owned(),
        E::Reset => "the peer reset the connection (it may have restarted)".to_owned(),
        E::VersionMismatch => "the peer speaks another QUIC version".to_owned(),
        E::CidsExhausted => "the connection ran out of connection ids".to_owned(),
    }
}

/// Takes a refusal sentence out of a TLS error text.
pub fn refusal_in(text: &str) -> Option<String> {
    let start = text.find(REFUSAL_OPEN)? + REFUSAL_OPEN.len();
    let end = text[start..].find(REFUSAL_CLOSE)? + start;
    Some(text[start..end].to_owned())
}

/// Sends `msg` on a stream of its own and reads the one answer within
/// `within`; a refusal is the error, in the peer's words. `peer` names the
/// other side in errors (`the hub`, `the parent hub`).
pub async fn ask(
    conn: &quinn::Connection,
    msg: &Message,
    within: std::time::Duration,
    peer: &str,
) -> Result<Message, String> {
    let (mut out, mut back) = conn.open_bi().await.map_err(|e| describe_connection_error(&e))?;
    send(&mut out, msg).await.map_err(|e| e.to_string())?;
    let _ = out.finish();
    match answer(conn, &mut back, within, peer).await? {
        Message::Refused(r) => Err(r.message),
        m => Ok(m),
    }
}

/// The next message on `recv` within `within`; a connection closed meanwhile
/// is described by the reason it was closed with.
pub async fn answer(
    conn: &quinn::Connection,
    recv: &mut quinn::RecvStream,
    within: std::time::Duration,
    peer: &str,
) -> Result<Message, String> {
    match tokio::time::timeout(within, self::recv(recv)).await {
        Err(_) => Err(format!("{peer} did not answer within {} s", within.as_secs())),
        Ok(Ok(Some(m))) => Ok(m),
        Ok(Ok(None)) => Err(format!("{peer} ended the stream without an answer")),
        Ok(Err(e)) => Err(conn.close_reason().map(|r| describe_connection_error(&r)).unwrap_or(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_is_extracted_from_rustls_text() {
        let t = "invalid peer certificate: Other(OtherError(<<gdx: the certificate of agent 632522/gongan has been revoked >>))";
        assert_eq!(refusal_in(t).unwrap(), "the certificate of agent 632522/gongan has been revoked");
        assert_eq!(refusal_in("plain"), None);
    }
}
