//! Reconnecting: the wait doubles from [`Backoff::MIN`] to [`Backoff::MAX`]
//! (or a lower ceiling, [`Backoff::up_to`]) after each failure, starts again
//! from the minimum after a connection that lasted [`Backoff::STABLE_AFTER`]
//! or that the peer ended by restarting ([`Backoff::start_over`], for
//! [`restarted`]), and is spread ± 20 % so that many agents (or child hubs)
//! cut off together do not all dial back at once.

use std::time::Duration;

/// The next wait before dialling again.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
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

    /// Waits from [`Backoff::MIN`] doubling to `max` (for retries that
    /// must stay prompt, such as sending again to a hub whose disk was full).
    pub fn up_to(max: Duration) -> Self {
        Self { next: Self::MIN, max }
    }

    /// Starts the waits again from [`Backoff::MIN`]: the peer answered a
    /// moment ago, so it is there to dial now. For a connection the peer
    /// reset after restarting ([`restarted`]); without it, a hub restarted
    /// several times within a few minutes (a crash, an upgrade, an
    /// operator's retries) would find its agents waiting up to a minute
    /// each time.
    pub fn start_over(&mut self) {
        self.next = Self::MIN;
    }

    /// How long to wait after a connection (or attempt) that lasted `lasted`.
    pub fn after(&mut self, lasted: Duration) -> Duration {
        if lasted >= Self::STABLE_AFTER {
            self.next = Self::MIN;
        }
        let wait = jitter(self.next);
        self.next = (self.next * 2).min(self.max);
        wait
    }
}

/// Whether `conn` ended because the peer restarted: it answered a packet
/// of this connection with a stateless reset, which only an endpoint that
/// no longer knows the connection sends (a hub keeps its reset key across
/// restarts, so a restarted hub ends its old connections at once). Ask
/// before closing the connection: a close of one's own replaces the reason.
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
    fn a_lower_ceiling_holds() {
        let mut b = Backoff::up_to(Duration::from_secs(8));
        let waits: Vec<f64> = (0..6).map(|_| b.after(Duration::ZERO).as_secs_f64()).collect();
        for (w, n) in waits.iter().zip([1.0, 2.0, 4.0, 8.0, 8.0, 8.0]) {
            assert!(*w >= n * 0.8 && *w <= n * 1.2, "{waits:?}");
        }
    }
}
