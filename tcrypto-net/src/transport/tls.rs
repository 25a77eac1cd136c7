//! Mutual TLS 1.3 with pinned identities (rustls, ring provider).
//!
//! There is no certificate authority: each side pins the SHA-256 of the peer's SubjectPublicKeyInfo
//! ([`SpkiFingerprint`]). A node accepts a client only if its certificate's key is one of the pinned coordinators;
//! a coordinator accepts a server only if its key is the one pinned for that node. Names, validity dates and
//! issuers are ignored (self-signed certificates); the handshake signature is checked against the pinned key by
//! rustls' own verification, so an unpinned peer never gets past the handshake. Only TLS 1.3 is offered.

use std::collections::BTreeSet;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use thiserror::Error as ThisError;

use crate::transport::identity::{SpkiFingerprint, TlsIdentity};

/// The server name a coordinator presents in the handshake; ignored by the pinned verifier.
pub const SERVER_NAME: &str = "tcrypto-node";

/// Errors building a TLS configuration.
#[derive(Debug, ThisError)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// No peer is pinned.
    #[error("no peer identity pinned")]
    NothingPinned,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

fn check_pinned(cert: &CertificateDer<'_>, pins: &BTreeSet<SpkiFingerprint>) -> Result<(), Error> {
    let fp = SpkiFingerprint::of_certificate(cert)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    if pins.contains(&fp) {
        Ok(())
    } else {
        tracing::warn!(fingerprint = %fp, "refused TLS peer with unpinned key");
        Err(Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }
}

/// Accepts exactly the certificates whose key is pinned.
#[derive(Debug)]
pub struct PinnedVerifier {
    pins: BTreeSet<SpkiFingerprint>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedVerifier {
    /// A verifier accepting the given keys.
    pub fn new(pins: impl IntoIterator<Item = SpkiFingerprint>) -> Result<Self, TlsConfigError> {
        let pins: BTreeSet<_> = pins.into_iter().collect();
        if pins.is_empty() {
            return Err(TlsConfigError::NothingPinned);
        }
        Ok(Self {
            pins,
            algorithms: algorithms(),
        })
    }

    /// TLS 1.2 handshake signatures are refused in both roles: only TLS 1.3 is offered.
    fn refuse_tls12() -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("TLS 1.2 is not offered".into()))
    }

    /// The TLS 1.3 handshake signature, checked by rustls against the (pinned) certificate's key, for both roles.
    fn handshake_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        check_pinned(end_entity, &self.pins).map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Self::refuse_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.handshake_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for PinnedVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        check_pinned(end_entity, &self.pins).map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Self::refuse_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.handshake_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

/// The node side: requires a client certificate whose key is one of `coordinators`.
pub fn server_config(
    identity: &TlsIdentity,
    coordinators: impl IntoIterator<Item = SpkiFingerprint>,
) -> Result<Arc<rustls::ServerConfig>, TlsConfigError> {
    let verifier = Arc::new(PinnedVerifier::new(coordinators)?);
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![identity.certificate().clone()], identity.private_key())?;
    Ok(Arc::new(cfg))
}

/// The coordinator side for one node: presents `identity` and accepts only the node key `node`.
pub fn client_config(
    identity: &TlsIdentity,
    node: SpkiFingerprint,
) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
    let verifier = Arc::new(PinnedVerifier::new([node])?);
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![identity.certificate().clone()], identity.private_key())?;
    Ok(Arc::new(cfg))
}

/// The server name to pass to `rustls::ClientConnection::new`.
pub fn server_name() -> ServerName<'static> {
    ServerName::DnsName(rustls::pki_types::DnsName::try_from(SERVER_NAME).unwrap_or_else(|_| unreachable!()))
}

/// The pinned fingerprint of the peer of an established connection.
pub fn peer_fingerprint(certs: Option<&[CertificateDer<'_>]>) -> Option<SpkiFingerprint> {
    certs
        .and_then(|c| c.first())
        .and_then(|c| SpkiFingerprint::of_certificate(c).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Runs a handshake between in-memory rustls connections, sends one message, and returns the client key the
    /// server saw.
    fn handshake(
        client: Arc<rustls::ClientConfig>,
        server: Arc<rustls::ServerConfig>,
    ) -> Result<Option<SpkiFingerprint>, Error> {
        let mut c = rustls::ClientConnection::new(client, server_name())?;
        let mut s = rustls::ServerConnection::new(server)?;
        for _ in 0..10 {
            let mut buf = Vec::new();
            c.write_tls(&mut buf).ok();
            s.read_tls(&mut &buf[..]).ok();
            s.process_new_packets()?;
            let mut buf = Vec::new();
            s.write_tls(&mut buf).ok();
            c.read_tls(&mut &buf[..]).ok();
            c.process_new_packets()?;
            if !c.is_handshaking() && !s.is_handshaking() {
                c.writer().write_all(b"ping").unwrap();
                let mut buf = Vec::new();
                c.write_tls(&mut buf).unwrap();
                s.read_tls(&mut &buf[..]).unwrap();
                s.process_new_packets()?;
                let mut got = [0u8; 4];
                s.reader().read_exact(&mut got).unwrap();
                assert_eq!(&got, b"ping");
                return Ok(peer_fingerprint(s.peer_certificates()));
            }
        }
        Err(Error::General("handshake did not finish".into()))
    }

    #[test]
    fn pinned_peers_complete_the_handshake() {
        let node = TlsIdentity::generate("node").unwrap();
        let coord = TlsIdentity::generate("coord").unwrap();
        let seen = handshake(
            client_config(&coord, node.fingerprint()).unwrap(),
            server_config(&node, [coord.fingerprint()]).unwrap(),
        )
        .unwrap();
        assert_eq!(seen, Some(coord.fingerprint()));
    }

    #[test]
    fn unpinned_client_is_refused_in_the_handshake() {
        let node = TlsIdentity::generate("node").unwrap();
        let coord = TlsIdentity::generate("coord").unwrap();
        let intruder = TlsIdentity::generate("coord").unwrap();
        let err = handshake(
            client_config(&intruder, node.fingerprint()).unwrap(),
            server_config(&node, [coord.fingerprint()]).unwrap(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidCertificate(_)), "{err:?}");
    }

    #[test]
    fn coordinator_refuses_a_node_with_another_key() {
        let node = TlsIdentity::generate("node").unwrap();
        let impostor = TlsIdentity::generate("node").unwrap();
        let coord = TlsIdentity::generate("coord").unwrap();
        let err = handshake(
            client_config(&coord, node.fingerprint()).unwrap(),
            server_config(&impostor, [coord.fingerprint()]).unwrap(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidCertificate(_)), "{err:?}");
    }

    #[test]
    fn an_empty_pin_list_is_a_configuration_error() {
        let node = TlsIdentity::generate("node").unwrap();
        assert!(matches!(
            server_config(&node, []),
            Err(TlsConfigError::NothingPinned)
        ));
    }
}
