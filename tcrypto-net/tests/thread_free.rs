//! The blocking coordinator creates no thread: nodes run as separate `tcrypto-node` processes, and the thread
//! count of this process (a test binary with this single test) is the same before and after connecting and
//! signing with many requests in flight.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{pkcs1_sha256, rsa_crate_verifies, rsa_key};
use tcrypto_net::client::blocking::BlockingCluster;
use tcrypto_net::coordinator::CoordinatorConfig;
use tcrypto_net::transport::identity::TlsIdentity;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn blocking_coordinator_signs_without_creating_any_thread() {
    let coordinator = TlsIdentity::generate("coordinator").unwrap();
    let (_nodes, addrs) = common::start_node_processes("thread-free", 3, &coordinator);
    let (pk, shares) = rsa_key(384, 2, 3, 5);
    let before = threads();
    let cluster = BlockingCluster::connect_tls(&coordinator, &addrs, CoordinatorConfig::default()).unwrap();
    assert_eq!(cluster.connect(Duration::from_secs(20)), 3);
    let key = cluster.import_rsa_shares(&pk, &shares, &mut rand::rng()).unwrap();
    let reqs: Vec<_> = (0..40u32)
        .map(|i| (key, pkcs1_sha256(&i.to_be_bytes())))
        .collect();
    for ((_, m), r) in reqs.iter().zip(cluster.sign_many(reqs.clone())) {
        rsa_crate_verifies(&pk, m, &r.unwrap().bytes).unwrap();
    }
    assert_eq!(threads(), before, "the blocking coordinator created threads");
}
