//! The fault harness, in CI: the impairment relay does what it is set to
//! (a cut link passes nothing, loss drops about its share, duplication
//! doubles), and a short seeded soak (`gdx-faults --faults 40 --seed 1`,
//! docs/reliability.md) converges: every vault at every level equals its
//! source, the grant's received table its projection, every audit log
//! verifies with one entry per changeset. As root (CI), the soak's hubs and
//! agents run in network namespaces joined by wires, and a pulled cable or
//! a kernel drop rule is among its faults.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use gdx_tests::faults::soak::{Options, run};
use gdx_tests::faults::{Impairment, Relay};

#[test]
fn the_relay_cuts_drops_and_duplicates_as_set() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay::start(server.local_addr().unwrap(), 7).await.unwrap();
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.connect(relay.addr).await.unwrap();
        let mut buf = [0u8; 64];
        // passes as it is
        client.send(b"hello").await.unwrap();
        let (n, _) = server.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello");
        let all_seen = async |n: u64| {
            for _ in 0..500 {
                let (p, d) = relay.counts();
                if p + d >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("the relay saw {:?} of {n} datagrams", relay.counts());
        };
        // cut: nothing arrives
        relay.set(Impairment { down: true, ..Impairment::default() });
        for _ in 0..20 {
            client.send(b"lost").await.unwrap();
        }
        all_seen(21).await;
        assert_eq!(relay.counts(), (1, 20));
        assert!(tokio::time::timeout(Duration::from_millis(300), server.recv_from(&mut buf)).await.is_err());
        // loss: about its share of 1,000 datagrams is dropped (seeded), sent at a pace the relay keeps up with
        relay.set(Impairment { loss: 0.2, ..Impairment::default() });
        for i in 0..1000u64 {
            client.send(b"x").await.unwrap();
            if i % 50 == 49 {
                all_seen(22 + i).await;
            }
        }
        all_seen(1021).await;
        let (passed, dropped) = relay.counts();
        assert_eq!(passed + dropped, 1021);
        assert!((150..=250).contains(&(dropped - 20)), "dropped {}", dropped - 20);
        // duplication: every datagram twice
        relay.set(Impairment { duplicate: 1.0, ..Impairment::default() });
        while tokio::time::timeout(Duration::from_millis(200), server.recv_from(&mut buf)).await.is_ok() {}
        client.send(b"twice").await.unwrap();
        let mut twice = 0;
        while twice < 2 {
            let (n, _) =
                tokio::time::timeout(Duration::from_secs(2), server.recv_from(&mut buf)).await.unwrap().unwrap();
            // a late "x" of the loss phase may still come first
            if &buf[..n] == b"twice" {
                twice += 1;
            }
        }
    });
}

#[test]
fn a_short_seeded_soak_converges() {
    let report = run(&Options { faults: 40, seed: 1, ..Options::default() }).unwrap_or_else(|e| panic!("{e:#}"));
    println!("{report:#?}");
    assert_eq!(report.by_kind.values().map(|k| k.count).sum::<usize>(), 40);
    assert!(report.source_changes > 0);
    if gdx_tests::faults::netns::unavailable().is_none() {
        let kernel = ["cable pulled (both ends down)", "one way dropped by the kernel"];
        assert!(kernel.iter().any(|k| report.by_kind.contains_key(*k)), "no fault of a kernel link was drawn");
    }
}
