//! Certificate renewal, with no person involved: a node (agent or child
//! hub) asks its hub for a new certificate over its live connection, with
//! a key it made itself, once two thirds of its certificate's life have
//! passed; the hub renews a certificate only past half of its life, so a
//! node cannot make it issue certificates at will. The node's identity is
//! the connection's, never the request's.

/// When a node asks: two thirds of the way from `not_before` to `not_after`.
pub fn due(not_before: i64, not_after: i64, now: i64) -> bool {
    now >= renew_at(not_before, not_after)
}

/// The moment renewal is due.
pub fn renew_at(not_before: i64, not_after: i64) -> i64 {
    not_before + (not_after - not_before).max(0) * 2 / 3
}

/// Whether a hub renews the certificate a node connected with: past half
/// its life and not expired. Err says why not, to the node.
pub fn may_renew(not_before: i64, not_after: i64, now: i64) -> Result<(), String> {
    if now >= not_after {
        return Err("the certificate has expired; enrol again with a new token".into());
    }
    if now < not_before + (not_after - not_before).max(0) / 2 {
        return Err("the certificate is not yet half way through its life; it is renewed after two thirds".into());
    }
    Ok(())
}

/// Days until `not_after`, for warnings (negative once expired).
pub fn days_left(not_after: i64, now: i64) -> i64 {
    (not_after - now).div_euclid(86_400)
}

/// Warn when a certificate ends within this many days and cannot renew.
pub const WARN_DAYS: i64 = 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_asks_after_two_thirds_and_the_hub_renews_after_half() {
        let (nb, na) = (0, 730 * 86_400);
        assert!(!due(nb, na, 486 * 86_400));
        assert!(due(nb, na, 487 * 86_400));
        assert_eq!(renew_at(nb, na), 730 * 86_400 * 2 / 3);
        assert!(may_renew(nb, na, 364 * 86_400).unwrap_err().contains("half way"));
        assert_eq!(may_renew(nb, na, 366 * 86_400), Ok(()));
        assert!(may_renew(nb, na, na).unwrap_err().contains("expired"));
        assert_eq!(days_left(na, na - 86_400 * 30 - 1), 30);
        assert_eq!(days_left(na, na + 1), -1);
    }
}
