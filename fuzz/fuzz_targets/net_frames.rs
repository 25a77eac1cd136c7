//! Fuzzes what a node does with bytes from a connection: the frame decoder (with the input cut at arbitrary
//! points) and `SignerNode::handle_frame` on every frame. Nothing panics, the decoder never holds more than one
//! maximal frame, and every frame gets an answer that decodes as a `Response`.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use tcrypto_net::node::audit::MemoryAudit;
use tcrypto_net::transport::frame::{FrameDecoder, HEADER_LEN, MAX_FRAME_LEN};
use tcrypto_net::transport::identity::NodeIdentity;
use tcrypto_net::node::SignerNode;
use tcrypto_net::node::replay::ReplayGuard;
use tcrypto_net::transport::wire::Response;

fn node() -> &'static SignerNode {
    static NODE: OnceLock<SignerNode> = OnceLock::new();
    NODE.get_or_init(|| {
        let id = NodeIdentity::generate("fuzz", &mut rand::rng()).expect("identity");
        SignerNode::new(Arc::new(id), None, Arc::new(MemoryAudit::default()), ReplayGuard::new(u64::MAX / 4, 1 << 16))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let mut d = FrameDecoder::new();
    for chunk in rest.chunks(usize::from(split).max(1)) {
        d.push(chunk);
        assert!(d.buffered() <= MAX_FRAME_LEN + HEADER_LEN + chunk.len());
        loop {
            match d.next_frame() {
                Ok(Some(frame)) => {
                    let answer = node().handle_frame(None, 1_800_000_000_000, &frame, &mut rand::rng());
                    Response::decode(&answer).expect("node answers are well formed");
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
});
