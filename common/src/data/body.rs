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

thread_local! {
    /// One compression and one decompression context per thread, kept:
    /// making them per changeset (each a fresh allocation of their
    /// buffers) cost more than the compression of a small changeset.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
}

/// `zstd(bincode(changeset))`, the body that is signed and sent. An error,
/// never empty bytes: what is returned gets signed.
pub fn encode_changeset(cs: &Changeset) -> Result<Vec<u8>, BodyError> {
    let raw =
        bincode::serde::encode_to_vec(cs, bincode::config::standard()).map_err(|e| BodyError::Encode(e.to_string()))?;
    compress(&raw)
}

/// `raw` compressed with this thread's context, at level 3.
fn compress(raw: &[u8]) -> Result<Vec<u8>, BodyError> {
    COMPRESSOR.with_borrow_mut(|c| {
        let c = match c {
            Some(c) => c,
            None => c.insert(zstd::bulk::Compressor::new(3).map_err(|e| BodyError::Encode(e.to_string()))?),
        };
        c.compress(raw).map_err(|e| BodyError::Encode(e.to_string()))
    })
}

/// The body [`encode_changeset`] makes of `cs` with `changes` as its
/// changes, each given as the bytes bincode gives a [`super::Change`]
/// ([`super::Change::put_upsert`], [`super::Change::put_delete`]);
/// `cs.changes` is not read. An agent encodes each changed row once, when
/// it digests it, and never holds it as values.
pub fn encode_changeset_of(cs: &Changeset, changes: &[&[u8]]) -> Result<Vec<u8>, BodyError> {
    let config = bincode::config::standard();
    let encode = |e: bincode::error::EncodeError| BodyError::Encode(e.to_string());
    // bincode writes a struct as its fields one after another, a Vec as its length and its items
    let mut raw = Vec::with_capacity(changes.iter().map(|c| c.len()).sum::<usize>() + 1024);
    let head = (&cs.origin, &cs.resource, cs.seq, cs.epoch, &cs.columns, &cs.key);
    bincode::serde::encode_into_std_write(head, &mut raw, config).map_err(encode)?;
    super::put_varint(&mut raw, changes.len() as u64);
    for change in changes {
        raw.extend_from_slice(change);
    }
    bincode::serde::encode_into_std_write(cs.created_at, &mut raw, config).map_err(encode)?;
    compress(&raw)
}

/// Decodes a body made by [`encode_changeset`], refusing anything that
/// decompresses beyond [`MAX_CHANGESET_BYTES`].
pub fn decode_changeset(body: &[u8]) -> Result<Changeset, BodyError> {
    let raw = decompress(body)?;
    let config = bincode::config::standard().with_limit::<MAX_CHANGESET_BYTES>();
    let (cs, used): (Changeset, usize) =
        bincode::serde::decode_from_slice(&raw, config).map_err(|e| BodyError::Decode(e.to_string()))?;
    if used != raw.len() {
        return Err(BodyError::Decode("bytes left over".into()));
    }
    Ok(cs)
}

/// The decompressed body, at most [`MAX_CHANGESET_BYTES`]. A body whose one
/// frame states its size (as [`encode_changeset`] writes it) is
/// decompressed at once into a buffer of that size, with this thread's
/// context; any other is streamed, its buffer growing with what it really
/// holds, so a size claimed falsely never allocates more than the limit.
fn decompress(body: &[u8]) -> Result<Vec<u8>, BodyError> {
    let declared = zstd::zstd_safe::get_frame_content_size(body).ok().flatten();
    let one_frame = zstd::zstd_safe::find_frame_compressed_size(body).is_ok_and(|n| n == body.len());
    if let Some(size) = declared.filter(|&n| one_frame && n as usize <= MAX_CHANGESET_BYTES) {
        let fast = DECOMPRESSOR.with_borrow_mut(|d| {
            let d = match d {
                Some(d) => d,
                None => d.insert(zstd::bulk::Decompressor::new().ok()?),
            };
            d.decompress(body, size as usize).ok()
        });
        if let Some(raw) = fast.filter(|raw| raw.len() as u64 == size) {
            return Ok(raw);
        }
    }
    let mut raw = Vec::new();
    let mut decoder = zstd::stream::read::Decoder::new(body).map_err(|e| BodyError::Compression(e.to_string()))?;
    // a window of at most 16 MiB (what the largest changeset needs), not zstd's 128 MiB
    decoder.window_log_max(24).map_err(|e| BodyError::Compression(e.to_string()))?;
    std::io::Read::read_to_end(&mut std::io::Read::take(decoder, MAX_CHANGESET_BYTES as u64 + 1), &mut raw)
        .map_err(|e| BodyError::Compression(e.to_string()))?;
    if raw.len() > MAX_CHANGESET_BYTES {
        return Err(BodyError::Compression(format!("it decompresses to more than {MAX_CHANGESET_BYTES} bytes")));
    }
    Ok(raw)
}
