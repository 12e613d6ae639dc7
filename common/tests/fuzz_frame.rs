//! Property tests of the frame decoder (`gdx_common::wire`: `decode_frame`,
//! `body_len`, `decode_body`), the first code that reads a peer's bytes.
//!
//! Whatever arrives, the decoder returns a message, asks for more bytes or
//! names what is wrong, and never panics; every message survives a round
//! trip; a frame cut short asks for more rather than failing, and a payload
//! cut short or followed by other bytes is refused. `PROPTEST_CASES` scales
//! the run (see docs/security.md).
#![allow(clippy::unwrap_used)]

mod support;

use gdx_common::wire::*;
use proptest::prelude::*;
use proptest::strategy::Union;
use support::{bytes, config, mutation, node_id, resource_code, role, text};

fn small_vec<T: Strategy>(s: T) -> impl Strategy<Value = Vec<T::Value>> {
    prop::collection::vec(s, 0..4)
}

fn refusal_code() -> impl Strategy<Value = RefusalCode> {
    prop::sample::select(vec![
        RefusalCode::TokenUnknown,
        RefusalCode::TokenUsed,
        RefusalCode::TokenExpired,
        RefusalCode::BadRequest,
        RefusalCode::VersionMismatch,
        RefusalCode::NotAuthorized,
        RefusalCode::Revoked,
        RefusalCode::Internal,
    ])
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        any::<i64>().prop_map(|answer_by_day| Status::Pending { answer_by_day }),
        Just(Status::Granted),
        text().prop_map(|reason| Status::Refused { reason }),
        text().prop_map(|reason| Status::Denied { reason }),
        (text(), any::<i64>()).prop_map(|(reason, at)| Status::Revoked { reason, at }),
    ]
}

fn request_record() -> impl Strategy<Value = RequestRecord> {
    (
        (text(), node_id(), node_id(), text(), text(), text()),
        (small_vec(text()), text(), any::<Option<i64>>(), any::<i64>(), status()),
        (small_vec(text()), small_vec(text()), any::<Option<i64>>(), any::<Option<i64>>(), any::<u64>(), text()),
    )
        .prop_map(
            |(
                (id, consumer, provider, code, name, resource),
                (fields, purpose, until, filed_at, status),
                (columns, masked, granted_until, decided_at, version, salt),
            )| RequestRecord {
                id,
                consumer,
                provider,
                code,
                name,
                resource,
                fields,
                purpose,
                until,
                filed_at,
                status,
                columns,
                masked,
                granted_until,
                decided_at,
                version,
                salt,
            },
        )
}

fn signed_delivery() -> impl Strategy<Value = SignedDelivery> {
    (text(), any::<u64>(), any::<bool>(), any::<u32>(), bytes(), bytes(), small_vec(bytes())).prop_map(
        |(grant, n, replace, rows, body, signature, signer_chain)| SignedDelivery {
            grant,
            n,
            replace,
            rows,
            body,
            signature,
            signer_chain,
        },
    )
}

fn signed_changeset() -> impl Strategy<Value = SignedChangeset> {
    (node_id(), resource_code(), any::<u64>(), any::<u32>(), bytes(), bytes(), small_vec(bytes())).prop_map(
        |(origin, resource, seq, rows, body, signature, signer_chain)| SignedChangeset {
            origin,
            resource,
            seq,
            rows,
            body,
            signature,
            signer_chain,
        },
    )
}

fn signed_entry() -> impl Strategy<Value = SignedEntry> {
    (node_id(), text(), any::<u64>(), bytes(), bytes(), small_vec(bytes())).prop_map(
        |(origin, code, version, body, signature, signer_chain)| SignedEntry {
            origin,
            code,
            version,
            body,
            signature,
            signer_chain,
        },
    )
}

fn exchange_batch() -> impl Strategy<Value = ExchangeBatch> {
    let progress = (text(), any::<u64>(), any::<u64>(), any::<i64>()).prop_map(|(grant, n, rows, at)| Progress {
        grant,
        n,
        rows,
        at,
    });
    (prop::collection::vec(request_record(), 0..3), small_vec(signed_delivery()), small_vec(progress), any::<u64>())
        .prop_map(|(records, deliveries, progress, upto)| ExchangeBatch {
            records,
            deliveries,
            progress,
            upto,
            ..ExchangeBatch::default()
        })
}

fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![
        (prop::option::of(small_vec(text())), any::<Option<i64>>(), small_vec(text()))
            .prop_map(|(fields, until, clear)| Verdict::Approve { fields, until, clear }),
        text().prop_map(|reason| Verdict::Deny { reason }),
        text().prop_map(|reason| Verdict::Revoke { reason }),
    ]
}

/// Any message, every variant equally likely.
fn message() -> impl Strategy<Value = Message> {
    let reported = (
        node_id(),
        role(),
        prop::option::of(text()),
        any::<Option<i64>>(),
        any::<Option<i64>>(),
        text(),
        any::<Option<i64>>(),
    )
        .prop_map(|(node, role, serial, not_after, revoked_at, state, last_seen)| ReportedNode {
            node,
            role,
            serial,
            not_after,
            revoked_at,
            state,
            last_seen,
        });
    let changed = || small_vec((text(), any::<i64>()));
    Union::new(vec![
        (node_id(), role(), text(), any::<bool>())
            .prop_map(|(node, role, software, probe)| Message::Hello(Hello { node, role, software, probe }))
            .boxed(),
        (node_id(), text(), text(), any::<i64>())
            .prop_map(|(hub, hub_name, software, now_ms)| Message::Welcome(Welcome { hub, hub_name, software, now_ms }))
            .boxed(),
        (refusal_code(), text()).prop_map(|(code, message)| Message::Refused(Refusal { code, message })).boxed(),
        (any::<[u8; 16]>(), any::<[u8; 32]>(), bytes(), prop::option::of(bytes()))
            .prop_map(|(token_id, secret, csr_der, ca_csr_der)| {
                Message::EnrollRequest(EnrollRequest { token_id, secret, csr_der, ca_csr_der })
            })
            .boxed(),
        (small_vec(bytes()), bytes(), node_id(), text(), prop::option::of(bytes()))
            .prop_map(|(chain_der, root_der, hub, hub_name, ca_der)| {
                Message::Enrolled(Enrolled { chain_der, root_der, hub, hub_name, ca_der })
            })
            .boxed(),
        signed_changeset().prop_map(Message::Upload).boxed(),
        (resource_code(), any::<u64>(), any::<bool>())
            .prop_map(|(resource, seq, duplicate)| Message::Ack(Ack { resource, seq, duplicate }))
            .boxed(),
        (resource_code(), any::<u64>(), any::<u64>())
            .prop_map(|(resource, got, expected)| Message::Gap(Gap { resource, got, expected }))
            .boxed(),
        (resource_code(), any::<u64>(), text())
            .prop_map(|(resource, seq, reason)| Message::Rejected(Rejected { resource, seq, reason }))
            .boxed(),
        signed_entry().prop_map(Message::Publish).boxed(),
        (text(), any::<u64>(), any::<u64>(), any::<bool>())
            .prop_map(|(code, version, held, recorded)| {
                Message::Catalogued(Catalogued { code, version, held, recorded })
            })
            .boxed(),
        (text(), any::<u64>(), text())
            .prop_map(|(code, version, reason)| Message::CatalogRefused(CatalogRefused { code, version, reason }))
            .boxed(),
        (any::<u64>(), changed())
            .prop_map(|(since, changed)| Message::CatalogPull(CatalogPull { since, changed }))
            .boxed(),
        (any::<u64>(), changed())
            .prop_map(|(upto, changed)| Message::CatalogPulled(CatalogPulled { upto, changed }))
            .boxed(),
        (small_vec(reported), any::<u64>())
            .prop_map(|(nodes, backlog)| Message::NodeReport(NodeReport { nodes, backlog }))
            .boxed(),
        small_vec((node_id(), any::<i64>())).prop_map(|revoke| Message::ReportAck(ReportAck { revoke })).boxed(),
        (text(), small_vec(text()), text(), any::<Option<i64>>())
            .prop_map(|(code, fields, purpose, until)| {
                Message::FileRequest(RequestForm { code, fields, purpose, until })
            })
            .boxed(),
        Just(Message::ListRequests).boxed(),
        prop::collection::vec(request_record(), 0..3).prop_map(Message::Requests).boxed(),
        (text(), verdict()).prop_map(|(id, verdict)| Message::Decide(Decision { id, verdict })).boxed(),
        request_record().prop_map(|r| Message::RequestAnswer(Box::new(r))).boxed(),
        (text(), any::<u64>()).prop_map(|(id, after)| Message::Fetch(Fetch { id, after })).boxed(),
        small_vec(signed_delivery()).prop_map(Message::Deliveries).boxed(),
        (text(), small_vec(text())).prop_map(|(code, key)| Message::Lookup(LookupQuery { code, key })).boxed(),
        (text(), prop::option::of(text()), node_id(), any::<u64>())
            .prop_map(|(id, row, served_by, as_of)| Message::LookupAnswer(LookupAnswer { id, row, served_by, as_of }))
            .boxed(),
        exchange_batch().prop_map(Message::ExchangePush).boxed(),
        any::<u64>().prop_map(Message::ExchangePushed).boxed(),
        any::<u64>().prop_map(Message::ExchangePull).boxed(),
        exchange_batch().prop_map(Message::ExchangePulled).boxed(),
        (bytes(), any::<u64>(), bytes(), any::<i64>(), bytes(), any::<u64>(), small_vec(bytes()))
            .prop_map(|(public_key, size, root, at, signature, from_size, proof)| {
                Message::Cosign(CosignRequest { public_key, size, root, at, signature, from_size, proof })
            })
            .boxed(),
        (any::<u64>(), node_id(), bytes(), bytes())
            .prop_map(|(size, cosigner, public_key, signature)| {
                Message::Cosigned(Cosignature { size, cosigner, public_key, signature })
            })
            .boxed(),
        any::<u64>().prop_map(Message::CosignFrom).boxed(),
    ])
}

/// A frame announcing `payload` (with the version of most kinds) as complete.
fn frame_of(payload: &[u8]) -> Vec<u8> {
    let mut f = ((payload.len() + 2) as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&OLDEST_PROTOCOL_VERSION.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Checks what `decode_frame` said about `buf` against what it may say.
fn check_decoded(buf: &[u8]) -> Result<(), TestCaseError> {
    match decode_frame(buf) {
        Ok(None) => {
            // more bytes are needed only when the announced frame is not all there
            if let Some(prefix) = buf.first_chunk::<LENGTH_PREFIX>() {
                let len = body_len(*prefix).map_err(|e| TestCaseError::fail(format!("Ok(None) for {e}")))?;
                prop_assert!(buf.len() < LENGTH_PREFIX + len);
            }
        }
        Ok(Some((msg, used))) => {
            prop_assert!(used <= buf.len());
            prop_assert_eq!(body_len(*buf.first_chunk::<LENGTH_PREFIX>().unwrap()), Ok(used - LENGTH_PREFIX));
            // whatever decodes re-encodes to a frame that decodes to it again
            let again = encode_frame(&msg).unwrap();
            prop_assert_eq!(decode_frame(&again), Ok(Some((msg, again.len()))));
        }
        Err(_) => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1000))]

    /// Arbitrary bytes: a message, a request for more, or an error.
    #[test]
    fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..256)) {
        check_decoded(&buf)?;
    }

    /// Arbitrary payloads behind a well-formed prefix and version reach the
    /// message decoder itself.
    #[test]
    fn arbitrary_payloads_never_panic(payload in prop::collection::vec(any::<u8>(), 0..256)) {
        check_decoded(&frame_of(&payload))?;
        let mut body = OLDEST_PROTOCOL_VERSION.to_be_bytes().to_vec();
        body.extend_from_slice(&payload);
        if let Ok(msg) = decode_body(&body) {
            prop_assert_eq!(decode_body(&encode_frame(&msg).unwrap()[LENGTH_PREFIX..]), Ok(msg));
        }
    }

    /// Arbitrary bodies: only the version this build speaks is decoded further.
    #[test]
    fn other_versions_are_named(version in any::<u16>(), payload in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut body = version.to_be_bytes().to_vec();
        body.extend_from_slice(&payload);
        match decode_body(&body) {
            Err(WireError::Version { theirs, ours }) => {
                prop_assert_eq!((theirs, ours), (version, PROTOCOL_VERSION));
                prop_assert!(!(OLDEST_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version));
            }
            Err(WireError::Malformed(_)) | Ok(_) => {
                prop_assert!((OLDEST_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version))
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    /// Every length prefix is either within the limits or refused as too
    /// large or too short, before any of the body is read.
    #[test]
    fn every_length_prefix_is_judged(prefix in any::<[u8; 4]>()) {
        let len = u32::from_be_bytes(prefix) as usize;
        let want = if len > MAX_FRAME_LEN {
            Err(WireError::TooLarge(len))
        } else if len < 2 {
            Err(WireError::TooShort(len))
        } else {
            Ok(len)
        };
        prop_assert_eq!(body_len(prefix), want.clone());
        // the prefix alone: more bytes, unless it is refused
        prop_assert_eq!(decode_frame(&prefix), want.map(|_| None));
    }

    /// Every message survives a round trip, and so do several in a row read
    /// as a stream.
    #[test]
    fn messages_round_trip(msgs in prop::collection::vec(message(), 1..4)) {
        let mut stream = Vec::new();
        for msg in &msgs {
            let frame = encode_frame(msg).unwrap();
            prop_assert_eq!(decode_frame(&frame), Ok(Some((msg.clone(), frame.len()))));
            prop_assert_eq!(decode_body(&frame[LENGTH_PREFIX..]), Ok(msg.clone()));
            stream.extend_from_slice(&frame);
        }
        let mut at = 0;
        for msg in msgs {
            let (got, used) = decode_frame(&stream[at..]).unwrap().unwrap();
            prop_assert_eq!(got, msg);
            at += used;
        }
        prop_assert_eq!(at, stream.len());
        prop_assert_eq!(decode_frame(&stream[at..]), Ok(None));
    }

    /// A frame cut anywhere asks for more bytes: a slow peer is not taken
    /// for a bad one.
    #[test]
    fn a_cut_frame_asks_for_more(msg in message(), cut in any::<prop::sample::Index>()) {
        let frame = encode_frame(&msg).unwrap();
        prop_assert_eq!(decode_frame(&frame[..cut.index(frame.len())]), Ok(None));
    }

    /// A payload cut short or followed by other bytes, announced as a
    /// complete frame, is refused (not read as another message).
    #[test]
    fn a_payload_cut_or_extended_is_refused(
        msg in message(),
        cut in any::<prop::sample::Index>(),
        more in prop::collection::vec(any::<u8>(), 1..16),
    ) {
        let frame = encode_frame(&msg).unwrap();
        let payload = &frame[LENGTH_PREFIX + 2..];
        let cut = frame_of(&payload[..cut.index(payload.len())]);
        prop_assert!(matches!(decode_frame(&cut), Err(WireError::Malformed(_))));
        let mut extended = payload.to_vec();
        extended.extend_from_slice(&more);
        prop_assert!(matches!(decode_frame(&frame_of(&extended)), Err(WireError::Malformed(_))));
    }

    /// Damage anywhere in a valid frame (prefix, version or payload, the
    /// prefix announcing the damaged length or the original one) never panics.
    #[test]
    fn damaged_frames_never_panic(msg in message(), damage in mutation()) {
        let frame = encode_frame(&msg).unwrap();
        let damaged = damage.apply(&frame);
        check_decoded(&damaged)?;
        if damaged.len() >= LENGTH_PREFIX + 2 {
            check_decoded(&frame_of(&damaged[LENGTH_PREFIX + 2..]))?;
        }
    }
}
