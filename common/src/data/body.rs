//! The body of a changeset as it is signed and sent: `zstd(bincode(…))`,
//! decoded within [`MAX_CHANGESET_BYTES`] and the row and cell limits.

use super::Changeset;

/// Largest decompressed changeset accepted, in bytes (an agent's are at
/// most 8 MiB of rows plus one row of up to 4 MiB).
pub const MAX_CHANGESET_BYTES: usize = 16 * 1024 * 1024;

/// Why a changeset body does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the changeset body does not decompress: {0}")]
    Compression(String),
    #[error("the changeset body does not decode: {0}")]
    Decode(String),
    #[error("the changeset cannot be encoded: {0}")]
    Encode(String),
}

/// `zstd(bincode(changeset))`, the body that is signed and sent. An error,
/// never empty bytes: what is returned gets signed.
pub fn encode_changeset(cs: &Changeset) -> Result<Vec<u8>, BodyError> {
    let raw =
        bincode::serde::encode_to_vec(cs, bincode::config::standard()).map_err(|e| BodyError::Encode(e.to_string()))?;
    zstd::bulk::compress(&raw, 3).map_err(|e| BodyError::Encode(e.to_string()))
}

/// Decodes a body made by [`encode_changeset`], refusing anything that
/// decompresses beyond [`MAX_CHANGESET_BYTES`].
pub fn decode_changeset(body: &[u8]) -> Result<Changeset, BodyError> {
    // streamed, so the buffer grows with what the body really holds, up to the limit
    let mut raw = Vec::new();
    let decoder = zstd::stream::read::Decoder::new(body).map_err(|e| BodyError::Compression(e.to_string()))?;
    std::io::Read::read_to_end(&mut std::io::Read::take(decoder, MAX_CHANGESET_BYTES as u64 + 1), &mut raw)
        .map_err(|e| BodyError::Compression(e.to_string()))?;
    if raw.len() > MAX_CHANGESET_BYTES {
        return Err(BodyError::Compression(format!("it decompresses to more than {MAX_CHANGESET_BYTES} bytes")));
    }
    let config = bincode::config::standard().with_limit::<MAX_CHANGESET_BYTES>();
    let (cs, used): (Changeset, usize) =
        bincode::serde::decode_from_slice(&raw, config).map_err(|e| BodyError::Decode(e.to_string()))?;
    if used != raw.len() {
        return Err(BodyError::Decode("bytes left over".into()));
    }
    Ok(cs)
}
