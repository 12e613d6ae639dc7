//! Tests of the wire protocol: frames, versions, limits, malformed input.

use super::*;

fn hello() -> Message {
    Message::Hello(Hello {
        node: NodeId::parse("632522/gongan").unwrap(),
        role: Role::Agent,
        software: "gdx-agent 0.1.0".into(),
        probe: false,
    })
}

#[test]
fn round_trip_and_streaming() {
    let a = encode_frame(&hello()).unwrap();
    let b = encode_frame(&Message::Refused(Refusal { code: RefusalCode::Revoked, message: "吊销".into() })).unwrap();
    let mut buf = a.clone();
    buf.extend_from_slice(&b);
    for cut in 0..a.len() {
        assert_eq!(decode_frame(&buf[..cut]).unwrap(), None);
    }
    let (m, used) = decode_frame(&buf).unwrap().unwrap();
    assert_eq!(m, hello());
    assert_eq!(used, a.len());
    let (m2, _) = decode_frame(&buf[used..]).unwrap().unwrap();
    assert!(matches!(m2, Message::Refused(r) if r.message == "吊销"));
}

#[test]
fn oversized_frame_is_refused_before_reading_it() {
    let prefix = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes();
    assert_eq!(decode_frame(&prefix), Err(WireError::TooLarge(MAX_FRAME_LEN + 1)));
    assert_eq!(body_len([0, 0, 0, 1]), Err(WireError::TooShort(1)));
}

#[test]
fn other_version_is_named() {
    let mut f = encode_frame(&hello()).unwrap();
    f[4..6].copy_from_slice(&7u16.to_be_bytes());
    let e = decode_frame(&f).unwrap_err();
    assert_eq!(e, WireError::Version { theirs: 7, ours: PROTOCOL_VERSION });
    assert!(e.to_string().contains("protocol 7") && e.to_string().contains("protocol 1 to 3"), "{e}");
}

#[test]
fn a_message_is_named_by_its_kind_only() {
    assert_eq!(Message::ListRequests.kind(), "ListRequests");
    let big = Message::Deliveries(Vec::new());
    assert_eq!(big.kind(), "Deliveries");
    assert_eq!(Message::ExchangePull(7).kind(), "ExchangePull");
}

#[test]
fn malformed_payloads_are_errors_not_panics() {
    let good = encode_frame(&hello()).unwrap();
    // every truncation of the payload, announced as complete
    for cut in 6..good.len() {
        let mut f = good[..cut].to_vec();
        f[..4].copy_from_slice(&((cut - 4) as u32).to_be_bytes());
        assert!(decode_frame(&f).is_err(), "cut {cut}");
    }
    // trailing garbage inside the frame
    let mut f = good.clone();
    f.push(0);
    let len = (f.len() - 4) as u32;
    f[..4].copy_from_slice(&len.to_be_bytes());
    assert!(matches!(decode_frame(&f), Err(WireError::Malformed(_))));
    // unknown variant, huge vec length
    for payload in [vec![0xff, 0xff], vec![4, 0xfc, 0xff, 0xff, 0xff, 0x7f]] {
        let mut f = ((payload.len() + 2) as u32).to_be_bytes().to_vec();
        f.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        f.extend_from_slice(&payload);
        assert!(decode_frame(&f).is_err());
    }
}

#[test]
fn pseudo_random_bytes_never_panic() {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for _ in 0..20_000 {
        let mut f = vec![];
        let n = (x % 64) as usize;
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            f.push(x as u8);
        }
        f.splice(0..0, ((n + 2) as u32).to_be_bytes());
        f.splice(4..4, PROTOCOL_VERSION.to_be_bytes());
        let _ = decode_frame(&f);
    }
}
