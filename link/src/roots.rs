//! Taking the roots the hub above trusts, the same way for agents and
//! child hubs: at each connection the node tells its hub the roots it
//! trusts and takes, of those the hub trusts, each that a root it already
//! trusts vouches for (`gdx_certs::trust::accept`), so a new root reaches
//! every node before the province issues under it. When it took one, it
//! tells the hub again, so that `gdx-hub ca status` there counts it.

use std::time::Duration;

use gdx_certs::trust;
use gdx_common::wire::{Message, OBSERVATIONS_AND_RENEWAL};

/// Asks the hub on `conn` for its roots; returns what it offered (its
/// issuing root first) and what of it this node should add to `trusted`.
pub async fn refresh(
    conn: &quinn::Connection,
    trusted: &[Vec<u8>],
    now: i64,
    peer: &str,
) -> Result<(Vec<Vec<u8>>, Vec<Vec<u8>>), String> {
    if crate::frames::protocol(conn) < OBSERVATIONS_AND_RENEWAL {
        return Ok((Vec::new(), Vec::new()));
    }
    let offered = ask(conn, trusted, peer).await?;
    let taken = trust::accept(trusted, &offered, now);
    if !taken.is_empty() {
        let all: Vec<Vec<u8>> = trusted.iter().chain(&taken).cloned().collect();
        ask(conn, &all, peer).await?;
    }
    Ok((offered, taken))
}

async fn ask(conn: &quinn::Connection, trusted: &[Vec<u8>], peer: &str) -> Result<Vec<Vec<u8>>, String> {
    let mine = trusted.iter().take(trust::MAX_ROOTS).cloned().collect();
    match crate::frames::ask(conn, &Message::AskRoots(mine), Duration::from_secs(60), peer).await? {
        Message::Roots(offered) if offered.len() <= trust::MAX_ROOTS => Ok(offered),
        Message::Roots(offered) => Err(format!("{peer} offered {} roots, more than a node keeps", offered.len())),
        other => Err(format!("{peer} answered the question for its roots with {}", other.kind())),
    }
}
