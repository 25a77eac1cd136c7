//! PKCS#11 module over the distributed HSM cluster.
