//! Strict, versioned encodings of the RSA types: round trips, and errors (never panics) on truncated input, trailing
//! bytes, unknown versions, wrong tags and tampered contents; key shares are checked against `v_i` on receipt.
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "common/rsa.rs"]
mod common;

use common::*;
use tcrypto::codec::{DecodeError, VERSION};
use tcrypto::rsa::{Error, KeyShare, MessageEncoding, PublicKeySet, SignatureShare, tag};
use tcrypto::{HashAlg, SessionId};

/// Every prefix, every one-byte extension and a bumped version of `bytes` fail to decode.
fn rejects_malformed<T: std::fmt::Debug>(bytes: &[u8], decode: impl Fn(&[u8]) -> Result<T, Error>) {
    for len in 0..bytes.len() {
        assert!(decode(&bytes[..len]).is_err(), "prefix of {len} bytes accepted");
    }
    let mut trailing = bytes.to_vec();
    trailing.push(0);
    assert!(matches!(
        decode(&trailing),
        Err(Error::Decode(DecodeError::TrailingBytes(1)))
    ));
    let mut version = bytes.to_vec();
    version[0] = VERSION + 1;
    assert!(matches!(
        decode(&version),
        Err(Error::Decode(DecodeError::UnknownVersion(_)))
    ));
    let mut wrong_tag = bytes.to_vec();
    wrong_tag[1] ^= 0x40;
    assert!(matches!(
        decode(&wrong_tag),
        Err(Error::Decode(DecodeError::UnexpectedTag { .. }))
    ));
}

#[test]
fn public_key_set_round_trips_and_rejects_malformed_bytes() {
    let (pk, _) = small_key(2, 3);
    let bytes = pk.encode();
    assert_eq!(&bytes[..2], &[VERSION, tag::PUBLIC_KEY_SET]);
    let back = PublicKeySet::decode(&bytes).unwrap();
    assert_eq!(back, pk);
    assert_eq!(back.encode(), bytes);
    assert_eq!(back.key_id(), pk.key_id());
    rejects_malformed(&bytes, PublicKeySet::decode);
}

#[test]
fn public_key_set_with_tampered_contents_is_rejected_by_its_key_id() {
    let (pk, _) = small_key(2, 3);
    let bytes = pk.encode();
    // Flip one bit of v_3 (the last field before the key id).
    let mut tampered = bytes.clone();
    let at = tampered.len() - 33;
    tampered[at] ^= 1;
    assert!(PublicKeySet::decode(&tampered).is_err());
    // Raise the threshold above n.
    let mut tampered = bytes.clone();
    tampered[3] = 9;
    assert!(PublicKeySet::decode(&tampered).is_err());
}

#[test]
fn key_share_round_trips_and_is_checked_against_v_i_on_receipt() {
    let (pk, shares) = small_key(2, 3);
    let bytes = shares[1].encode();
    assert_eq!(&bytes[..2], &[VERSION, tag::KEY_SHARE]);
    let back = KeyShare::decode(&bytes).unwrap();
    assert_eq!(back.id(), shares[1].id());
    assert_eq!(*back.encode(), *bytes);
    back.check_against(&pk).unwrap();
    rejects_malformed(&bytes, KeyShare::decode);

    // A share whose secret was altered in transit no longer matches v_i.
    let mut tampered = bytes.to_vec();
    tampered[10] ^= 0x80;
    assert_eq!(
        KeyShare::decode(&tampered).unwrap_err(),
        Error::KeyShareMismatch("v^s_i does not equal v_i")
    );
    // A share presented under another signer's id fails the same check.
    let mut swapped = bytes.to_vec();
    swapped[3] = 3;
    assert!(matches!(
        KeyShare::decode(&swapped),
        Err(Error::KeyShareMismatch(_))
    ));
    // A share checked against another key's public set.
    let (other_pk, _) = key_from_fixture(384, (2, 3), 2, 3, 1);
    assert!(matches!(
        back.check_against(&other_pk),
        Err(Error::KeyShareMismatch(_))
    ));
    // And a secret given directly that is not this signer's.
    assert!(KeyShare::new(shares[0].id(), &[1, 2, 3], pk.clone()).is_err());
}

#[test]
fn key_share_debug_never_prints_the_secret() {
    let (_, shares) = small_key(2, 3);
    let debug = format!("{:?}", shares[0]);
    assert!(debug.contains("<redacted>"), "{debug}");
    let secret_hex = hex::encode(&shares[0].encode()[8..24]);
    assert!(!debug.to_lowercase().contains(&secret_hex));
}

#[test]
fn signature_share_round_trips_and_rejects_malformed_bytes() {
    let (_, shares) = small_key(2, 3);
    let msg = MessageEncoding::pkcs1v15_of(HashAlg::Sha256, b"m");
    let share = shares[0]
        .sign_share(&SessionId([1; 32]), &msg, &mut rng(1))
        .unwrap();
    for s in [share.clone(), shares[0].sign_share_unproven(&msg).unwrap()] {
        let bytes = s.encode();
        assert_eq!(&bytes[..2], &[VERSION, tag::SIGNATURE_SHARE]);
        let back = SignatureShare::decode(&bytes).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.encode(), bytes);
        rejects_malformed(&bytes, SignatureShare::decode);
    }
    // Non-minimal integers are rejected, so every share has one encoding.
    let bytes = share.encode();
    let mut padded = bytes[..4].to_vec();
    let len = u32::from_be_bytes(bytes[4..8].try_into().unwrap());
    padded.extend((len + 1).to_be_bytes());
    padded.push(0);
    padded.extend(&bytes[8..]);
    assert!(SignatureShare::decode(&padded).is_err());
    // A proof flag other than 0/1.
    let mut flag = bytes.clone();
    flag[8 + len as usize] = 2;
    assert!(SignatureShare::decode(&flag).is_err());
}

#[test]
fn message_encoding_round_trips_and_rejects_malformed_bytes() {
    for msg in [
        MessageEncoding::pkcs1v15_of(HashAlg::Sha1, b"m"),
        MessageEncoding::pss_of(HashAlg::Sha384, b"m", vec![9; 48]),
        MessageEncoding::Pkcs1v15DigestInfo {
            digest_info: [
                tcrypto::rsa::encoding::digest_info_prefix(HashAlg::Sha512),
                &[1u8; 64][..],
            ]
            .concat(),
        },
    ] {
        let bytes = msg.encode();
        assert_eq!(&bytes[..2], &[VERSION, tag::MESSAGE_ENCODING]);
        assert_eq!(MessageEncoding::decode(&bytes).unwrap(), msg);
        rejects_malformed(&bytes, MessageEncoding::decode);
    }
    // Unknown mechanism and unknown hash.
    assert!(MessageEncoding::decode(&[VERSION, tag::MESSAGE_ENCODING, 9]).is_err());
    assert!(MessageEncoding::decode(&[VERSION, tag::MESSAGE_ENCODING, 1, 77, 0, 0, 0, 0]).is_err());
}

#[test]
fn garbage_never_panics_any_decoder() {
    let mut rng = rng(7);
    for len in 0..300usize {
        let mut bytes = vec![0u8; len];
        rand::RngExt::fill(&mut rng, &mut bytes[..]);
        if len >= 2 {
            bytes[0] = VERSION;
        }
        for t in [
            tag::PUBLIC_KEY_SET,
            tag::KEY_SHARE,
            tag::SIGNATURE_SHARE,
            tag::MESSAGE_ENCODING,
        ] {
            if len >= 2 {
                bytes[1] = t;
            }
            let _ = PublicKeySet::decode(&bytes);
            let _ = KeyShare::decode(&bytes);
            let _ = SignatureShare::decode(&bytes);
            let _ = MessageEncoding::decode(&bytes);
        }
    }
}

#[path = "common/fuzz_seeds.rs"]
mod fuzz_seeds;
use fuzz_seeds::{seeds_dir, write_seeds};

/// Regenerates the committed fuzz seeds under `fuzz/seeds/rsa_*`:
/// `cargo test -p tcrypto --all-features --test encodings -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes files; run by hand to regenerate the fuzz seeds"]
fn write_fuzz_seeds() {
    let (pk, shares) = small_key(2, 3);
    let msg = MessageEncoding::pss_of(HashAlg::Sha256, b"seed", vec![1; 32]);
    let share = shares[0]
        .sign_share(&SessionId([1; 32]), &msg, &mut rng(1))
        .unwrap();
    let digest_info = MessageEncoding::Pkcs1v15DigestInfo {
        digest_info: [
            tcrypto::rsa::encoding::digest_info_prefix(HashAlg::Sha1),
            &[7u8; 20][..],
        ]
        .concat(),
    };
    let sets: [(&str, Vec<Vec<u8>>); 4] = [
        ("rsa_public_key_set", vec![pk.encode()]),
        ("rsa_key_share", vec![shares[1].encode().to_vec()]),
        (
            "rsa_signature_share",
            vec![
                share.encode(),
                shares[2].sign_share_unproven(&msg).unwrap().encode(),
            ],
        ),
        (
            "rsa_message_encoding",
            vec![
                msg.encode(),
                MessageEncoding::pkcs1v15_of(HashAlg::Sha512, b"seed").encode(),
                digest_info.encode(),
            ],
        ),
    ];
    for (target, seeds) in sets {
        write_seeds(target, &seeds);
    }
}

/// The fuzz targets' property (decode → encode gives the input back) over the committed seeds, on stable Rust.
#[test]
fn committed_fuzz_seeds_round_trip() {
    type RoundTrip = fn(&[u8]) -> Option<Vec<u8>>;
    let round_trips: [(&str, RoundTrip); 4] = [
        ("rsa_public_key_set", |b| {
            PublicKeySet::decode(b).ok().map(|v| v.encode())
        }),
        ("rsa_key_share", |b| {
            KeyShare::decode(b).ok().map(|v| v.encode().to_vec())
        }),
        ("rsa_signature_share", |b| {
            SignatureShare::decode(b).ok().map(|v| v.encode())
        }),
        ("rsa_message_encoding", |b| {
            MessageEncoding::decode(b).ok().map(|v| v.encode())
        }),
    ];
    for (target, round_trip) in round_trips {
        let mut valid = 0;
        for entry in std::fs::read_dir(seeds_dir(target)).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            match round_trip(&bytes) {
                Some(again) => {
                    assert_eq!(again, bytes, "{}", path.display());
                    valid += 1;
                }
                None => assert!(
                    path.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("truncated")
                ),
            }
        }
        assert!(valid > 0, "{target}: no valid seed");
    }
}
