//! Coordinator and signer-node protocol of the distributed HSM.
