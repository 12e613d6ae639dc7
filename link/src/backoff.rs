//! Reconnecting: the wait doubles from [`Backoff::MIN`] to [`Backoff::MAX`]
//! (or a lower ceiling, [`Backoff::up_to`]) after each failure, starts again
//! from the minimum after a connection that lasted [`Backoff::STABLE_AFTER`]
//! or that the peer ended by restarting ([`Backoff::start_over`], for
//! [`restarted`]; at most [`Backoff::FRESH_STARTS`] times in a row, so that a
//! hub in a crash loop is still given room), and is spread ± 20 % so that
//! many agents (or child hubs) cut off together do not all dial back at once.

use std::time::Duration;

/// The next wait before dialling again.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
    /// Restarts of the peer that started the waits over since the last
    /// connection that lasted [`Backoff::STABLE_AFTER`].
    fresh_starts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::up_to(Self::MAX)
    }
}

impl Backoff {
    /// First wait.
    pub const MIN: Duration = Duration::from_secs(1);
    /// Longest wait.
    pub const MAX: Duration = Duration::from_secs(60);
    /// A connection that lasted this long starts the waits again from [`Backoff::MIN`].
    pub const STABLE_AFTER: Duration = Duration::from_secs(30);
    /// Restarts of the peer in a row, none followed by a connection that
    /// lasted [`Backoff::STABLE_AFTER`], that start the waits over; after
    /// them the waits double again (a hub that dies each time its agents
    /// come back gets the room a backoff gives).
    pub const FRESH_STARTS: u32 = 5;

    /// Waits from [`Backoff::MIN`] doubling to `max` (for retries that
    /// must stay prompt, such as sending again to a hub whose disk was full).
    pub fn up_to(max: Duration) -> Self {
        Self { next: Self::MIN, max, fresh_starts: 0 }
    }

    /// Starts the waits again from [`Backoff::MIN`]: the peer answered a
    /// moment ago, so it is there to dial now. For a connection the peer
    /// reset after restarting ([`restarted`]); without it, a hub restarted
    /// several times within a few minutes (an upgrade, an operator's
    /// retries, a machine fault) would find its agents waiting up to a
    /// minute each time. Only [`Backoff::FRESH_STARTS`] times in a row.
    pub fn start_over(&mut self) {
        if self.fresh_starts < Self::FRESH_STARTS {
            self.fresh_starts += 1;
            self.next = Self::MIN;
        }
    }

    /// How long to wait after a connection (or attempt) that lasted `lasted`.
    pub fn after(&mut self, lasted: Duration) -> Duration {
        if lasted >= Self::STABLE_AFTER {
            self.next = Self::MIN;
            self.fresh_starts = 0;
        }
        let wait = jitter(self.next);
        self.next = (self.next * 2).min(self.max);
        wait
    }
}

/// Whether `conn` ended because the peer restarted: it answered a packet
/// of this connection with a stateless reset, which an endpoint sends for
/// a connection it no longer knows (a hub keeps its reset key across
/// restarts, so a restarted hub ends its old connections at once; a hub
/// that gave the connection up after its idle timeout sends one too, and
/// is there to dial as well). Ask before closing the connection: a close
/// of one's own replaces the reason.
pub fn restarted(conn: &quinn::Connection) -> bool {
    matches!(conn.close_reason(), Some(quinn::ConnectionError::Reset))
}

/// `base` ± 20 %.
pub fn jitter(base: Duration) -> Duration {
    let r = u16::from_le_bytes(gdx_certs::pki::random_bytes::<2>());
    let factor = 0.8 + 0.4 * (f64::from(r) / f64::from(u16::MAX));
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..200 {
            let d = jitter(Duration::from_secs(10));
            assert!(d >= Duration::from_secs(8) && d <= Duration::from_secs(12), "{d:?}");
        }
    }

    #[test]
    fn waits_double_to_the_maximum_and_start_again_after_a_stable_link() {
        let mut b = Backoff::default();
        let waits: Vec<f64> = (0..9).map(|_| b.after(Duration::ZERO).as_secs_f64()).collect();
        let nominal = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0];
        for (w, n) in waits.iter().zip(nominal) {
            assert!(*w >= n * 0.8 && *w <= n * 1.2, "{waits:?}");
        }
        let w = b.after(Backoff::STABLE_AFTER).as_secs_f64();
        assert!((0.8..=1.2).contains(&w), "{w}");
    }

    #[test]
    fn a_restarted_peer_is_dialled_again_at_the_first_wait() {
        let mut b = Backoff::default();
        for _ in 0..5 {
            b.after(Duration::ZERO);
        }
        b.start_over();
        let w = b.after(Duration::ZERO).as_secs_f64();
        assert!((0.8..=1.2).contains(&w), "{w}");
        // and doubles from there when the next attempts fail
        let w = b.after(Duration::ZERO).as_secs_f64();
        assert!((1.6..=2.4).contains(&w), "{w}");
    }

    #[test]
    fn a_peer_that_keeps_restarting_gets_the_doubling_waits_again() {
        let mut b = Backoff::default();
        let mut waits = Vec::new();
        for _ in 0..Backoff::FRESH_STARTS + 3 {
            b.start_over();
            waits.push(b.after(Duration::from_secs(2)).as_secs_f64());
        }
        let fresh = Backoff::FRESH_STARTS as usize;
        assert!(waits[..fresh].iter().all(|w| (0.8..=1.2).contains(w)), "{waits:?}");
        assert!(waits[fresh] >= 1.6 && waits[fresh + 2] >= 6.4, "{waits:?}");
        // a connection that lasted gives the fresh starts back
        b.after(Backoff::STABLE_AFTER);
        b.start_over();
        assert!(b.after(Duration::ZERO).as_secs_f64() <= 1.2);
    }

    #[test]
    fn a_lower_ceiling_holds() {
        let mut b = Backoff::up_to(Duration::from_secs(8));
        let waits: Vec<f64> = (0..6).map(|_| b.after(Duration::ZERO).as_secs_f64()).collect();
        for (w, n) in waits.iter().zip([1.0, 2.0, 4.0, 8.0, 8.0, 8.0]) {
            assert!(*w >= n * 0.8 && *w <= n * 1.2, "{waits:?}");
        }
    }
}
