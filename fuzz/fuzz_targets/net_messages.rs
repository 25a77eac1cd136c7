//! Fuzzes the strict decoders of tcrypto-net's wire types: never a panic, and whatever decodes re-encodes to the
//! same bytes (one encoding per value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcrypto_net::transport::bundle::SealedBundle;
use tcrypto_net::transport::identity::{IdentityFile, NodePublic, SealedTlsIdentity};
use tcrypto_net::transport::sealed::Envelope;
use tcrypto_net::transport::wire::{KeptDelivery, Request, Response};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = Request::decode(data) {
        assert_eq!(v.encode(), data);
    }
    if let Ok(v) = Response::decode(data) {
        assert_eq!(v.encode(), data);
    }
    if let Ok(v) = Envelope::decode(data) {
        assert_eq!(v.encode(), data);
    }
    if let Ok(v) = SealedBundle::decode(data) {
        assert_eq!(v.encode(), data);
    }
    if let Ok(v) = NodePublic::decode(data) {
        assert_eq!(v.encode(), data);
    }
    // Coordinator identity files (sealed, or legacy bare ones): never a panic; a sealed one round-trips.
    if let Ok(v) = SealedTlsIdentity::decode(data) {
        assert_eq!(v.encode(), data);
    }
    let _ = IdentityFile::decode(data);
    if let Ok(v) = KeptDelivery::decode(data) {
        assert_eq!(v.encode(), data);
    }
    // A node's stored reshare record.
    if let Ok(v) = tcrypto_net::node::reshare::record_round_trip(data) {
        assert_eq!(&v[..], data);
    }
});
