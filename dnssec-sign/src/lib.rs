//! DNSSEC zone signer: NSEC, NSEC3 and ZONEMD over local, threshold and PKCS#11 keys.
