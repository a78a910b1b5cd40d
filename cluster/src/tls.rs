//! TLS between nodes (`[cluster.tls]`), mutual: every node presents its certificate and
//! checks its peer's against the cluster's CA.
//!
//! [`load`] reads the PEM files once, at start-up, and fails with an error naming the
//! file (and its config key) when one is missing, unreadable or unusable: no
//! certificate, no private key, a key that is not the certificate's, or a certificate
//! that the CA did not sign. It builds:
//! - the acceptor ractor_cluster's `NodeServer` runs on every inbound connection
//!   (`IncomingEncryptionMode::Tls`). Its client certificate check is webpki's, chained
//!   to the CA and mandatory; a refused certificate is logged here, with this node's
//!   name, before rustls ends the handshake;
//! - the connector [`crate::node::ClusterNode`] dials seeds and learned peers with
//!   (`client_connect_enc`). It presents this node's certificate and checks the peer's
//!   against the CA and the name dialled: `server_name` when set (one name on every
//!   node's certificate), else the host of the peer's address (an IP address or DNS
//!   name that its certificate must carry).
//!
//! TLS 1.3 only, with the process's default rustls provider (the binary installs ring)
//! or ring when none is installed. The cookie challenge still runs inside the TLS
//! session: a peer needs both a certificate from the CA and the cookie.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The files and name of `[cluster.tls]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// This node's certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// This node's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The CA certificate(s) (PEM) that sign every node's certificate.
    pub ca: PathBuf,
    /// The name every peer's certificate must carry; `None`: the host of its address.
    pub server_name: Option<String>,
}

/// Why `[cluster.tls]` cannot be used; each names the file and its config key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read the cluster TLS {which} file {} (key `cluster.tls.{which}`)", path.display())]
    Read {
        /// `cert`, `key` or `ca`.
        which: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file was read but cannot be used.
    #[error("the cluster TLS {which} file {} (key `cluster.tls.{which}`) {reason}", path.display())]
    Invalid {
        /// `cert`, `key` or `ca`.
        which: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `server_name` is neither a DNS name nor an IP address.
    #[error("key `cluster.tls.server_name`: {name:?} is not a DNS name or an IP address")]
    ServerName {
        /// The configured name.
        name: String,
    },
}

/// The loaded `[cluster.tls]`: the acceptor and connector of this node's cluster sessions.
#[derive(Clone)]
pub struct ClusterTls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    server_name: Option<ServerName<'static>>,
    ca: PathBuf,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterTls")
            .field("ca", &self.ca)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl ClusterTls {
    /// The acceptor the node server runs on inbound connections.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// The connector for outbound connections.
    pub(crate) fn connector(&self) -> TlsConnector {
        self.connector.clone()
    }

    /// The CA file peers are checked against (for logs).
    pub fn ca(&self) -> &Path {
        &self.ca
    }

    /// The name a peer dialled at `addr` (`host:port`) must prove: `server_name` when
    /// set, else the host.
    pub(crate) fn server_name_for(&self, addr: &str) -> Result<ServerName<'static>, String> {
        if let Some(name) = &self.server_name {
            return Ok(name.clone());
        }
        let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_string())
            .map_err(|_| format!("{host:?} is not a DNS name or an IP address"))
    }
}

/// Reads `[cluster.tls]` and builds the acceptor and connector for node `node`.
pub fn load(files: &TlsFiles, node: &str) -> Result<ClusterTls, TlsError> {
    let chain = read_certs("cert", &files.cert)?;
    let key = read_key(&files.key)?;
    let ca_certs = read_certs("ca", &files.ca)?;
    let server_name = match &files.server_name {
        None => None,
        Some(name) => Some(
            ServerName::try_from(name.clone())
                .map_err(|_| TlsError::ServerName { name: name.clone() })?,
        ),
    };
    let invalid = |which: &'static str, path: &Path, reason: String| TlsError::Invalid {
        which,
        path: path.to_path_buf(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    for cert in ca_certs {
        roots.add(cert).map_err(|e| {
            invalid(
                "ca",
                &files.ca,
                format!("holds a certificate that cannot be a CA: {e}"),
            )
        })?;
    }
    let roots = Arc::new(roots);
    let provider = provider();
    let webpki = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| invalid("ca", &files.ca, format!("cannot check peers: {e}")))?;
    // A node whose own certificate the CA did not sign (or that expired) would be
    // refused by every peer: say so now, naming the files.
    let (leaf, intermediates) = chain
        .split_first()
        .ok_or_else(|| invalid("cert", &files.cert, "holds no PEM certificate".to_string()))?;
    webpki
        .verify_client_cert(leaf, intermediates, UnixTime::now())
        .map_err(|e| {
            invalid(
                "cert",
                &files.cert,
                format!(
                    "does not verify against the CA in {}: {e}",
                    files.ca.display()
                ),
            )
        })?;
    let verifier = Arc::new(RefusalLoggingVerifier {
        inner: webpki,
        node: node.to_string(),
    });
    let mismatch = |e: rustls::Error| {
        invalid(
            "key",
            &files.key,
            format!(
                "cannot be used with the certificate in {}: {e}",
                files.cert.display()
            ),
        )
    };
    let versions = [&rustls::version::TLS13];
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| invalid("cert", &files.cert, format!("no TLS 1.3 support: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(mismatch)?;
    let client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| invalid("cert", &files.cert, format!("no TLS 1.3 support: {e}")))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(mismatch)?;
    Ok(ClusterTls {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        connector: TlsConnector::from(Arc::new(client)),
        server_name,
        ca: files.ca.clone(),
    })
}

/// The process's default provider (the binary installs ring), else ring.
fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

fn read(which: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        which,
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate of a PEM file (at least one).
fn read_certs(which: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(which, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid {
            which,
            path: path.to_path_buf(),
            reason: format!("is not valid PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Invalid {
            which,
            path: path.to_path_buf(),
            reason: "holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)".to_string(),
        });
    }
    Ok(certs)
}

/// The private key of a PEM file.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read("key", path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Invalid {
        which: "key",
        path: path.to_path_buf(),
        reason: format!("holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
    })
}

/// webpki's client certificate check, which logs the certificates it refuses: rustls
/// only ends the handshake, and ractor_cluster's listener logs no peer name or address.
#[derive(Debug)]
struct RefusalLoggingVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    node: String,
}

impl ClientCertVerifier for RefusalLoggingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_client_cert(end_entity, intermediates, now);
        if let Err(e) = &verdict {
            tracing::warn!(node = %self.node,
                "cluster peer refused: its TLS certificate does not verify against the cluster CA: {e}");
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A CA: its certificate and key.
    struct Ca {
        cert: rcgen::Certificate,
        key: KeyPair,
    }

    impl Ca {
        fn new(name: &str) -> Ca {
            let key = KeyPair::generate().expect("CA key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            (params.distinguished_name).push(rcgen::DnType::CommonName, name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let cert = params.self_signed(&key).expect("CA certificate");
            Ca { cert, key }
        }

        /// Writes `ca.pem` and a node certificate for `127.0.0.1` signed by this CA into
        /// `dir`, and returns their files.
        fn node_files(&self, dir: &Path, name: &str) -> TlsFiles {
            let key = KeyPair::generate().expect("node key");
            let params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
            let cert = params
                .signed_by(&key, &self.cert, &self.key)
                .expect("node certificate");
            let files = TlsFiles {
                cert: dir.join(format!("{name}.pem")),
                key: dir.join(format!("{name}.key")),
                ca: dir.join(format!("{name}-ca.pem")),
                server_name: None,
            };
            std::fs::write(&files.cert, cert.pem()).expect("write cert");
            std::fs::write(&files.key, key.serialize_pem()).expect("write key");
            std::fs::write(&files.ca, self.cert.pem()).expect("write ca");
            files
        }
    }

    /// Runs a TLS handshake between `client` and `server` over an in-memory pipe and
    /// echoes a byte through; returns each side's outcome (server, client).
    async fn handshake(
        client: &ClusterTls,
        server: &ClusterTls,
    ) -> (Result<(), String>, Result<(), String>) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let name = client.server_name_for("127.0.0.1:4370").expect("name");
        let connector = client.connector();
        let acceptor = server.acceptor();
        let dial = tokio::spawn(async move {
            let mut stream = connector.connect(name, a).await?;
            stream.write_all(b"x").await?;
            stream.flush().await?;
            // TLS 1.3: a refused client certificate shows on the client's first read.
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await?;
            Ok::<_, std::io::Error>(())
        });
        let served = async move {
            let mut stream = acceptor.accept(b).await?;
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await?;
            stream.write_all(&byte).await?;
            stream.flush().await?;
            Ok::<_, std::io::Error>(())
        };
        let served = served.await.map_err(|e| e.to_string());
        let dialled = match dial.await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(format!("client task: {e}")),
        };
        (served, dialled)
    }

    #[test]
    fn a_missing_file_is_refused_naming_the_file_and_its_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut files = Ca::new("ca1").node_files(dir.path(), "a");
        files.cert = dir.path().join("nope.pem");
        let err = load(&files, "a").expect_err("missing cert").to_string();
        assert!(err.contains("nope.pem"), "{err}");
        assert!(err.contains("cluster.tls.cert"), "{err}");
    }

    #[test]
    fn a_file_without_pem_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = Ca::new("ca2").node_files(dir.path(), "a");
        std::fs::write(&files.ca, "not a certificate\n").expect("write");
        let err = load(&files, "a").expect_err("bad ca").to_string();
        assert!(err.contains("a-ca.pem"), "{err}");
        assert!(err.contains("cluster.tls.ca"), "{err}");
        assert!(err.contains("no PEM certificate"), "{err}");
        std::fs::write(&files.key, "").expect("write");
        let err = load(&files, "a").expect_err("bad key").to_string();
        assert!(err.contains("a.key"), "{err}");
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = Ca::new("ca3");
        let files = ca.node_files(dir.path(), "a");
        let other = ca.node_files(dir.path(), "b");
        let mixed = TlsFiles {
            key: other.key,
            ..files
        };
        let err = load(&mixed, "a").expect_err("mismatched key").to_string();
        assert!(err.contains("b.key"), "{err}");
        assert!(err.contains("cluster.tls.key"), "{err}");
    }

    #[test]
    fn a_certificate_the_ca_did_not_sign_is_refused_at_load() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = Ca::new("ca4").node_files(dir.path(), "a");
        let foreign = Ca::new("ca5").node_files(dir.path(), "b");
        let mixed = TlsFiles {
            ca: foreign.ca,
            ..files
        };
        let err = load(&mixed, "a").expect_err("foreign CA").to_string();
        assert!(err.contains("a.pem"), "{err}");
        assert!(err.contains("does not verify against the CA"), "{err}");
    }

    #[test]
    fn the_name_checked_is_server_name_else_the_host_dialled() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut files = Ca::new("ca6").node_files(dir.path(), "a");
        let tls = load(&files, "a").expect("loads");
        let name = |addr| tls.server_name_for(addr).map(|n| n.to_str().into_owned());
        assert_eq!(name("10.0.0.1:4370"), Ok("10.0.0.1".to_string()));
        assert_eq!(
            name("node-b.internal:4370"),
            Ok("node-b.internal".to_string())
        );
        assert_eq!(name("[::1]:4370"), Ok("::1".to_string()));
        files.server_name = Some("recnode-cluster".to_string());
        let tls = load(&files, "a").expect("loads");
        assert_eq!(
            tls.server_name_for("10.0.0.1:4370")
                .map(|n| n.to_str().into_owned()),
            Ok("recnode-cluster".to_string())
        );
        files.server_name = Some("not a name!".to_string());
        let err = load(&files, "a").expect_err("bad name").to_string();
        assert!(err.contains("cluster.tls.server_name"), "{err}");
    }

    #[tokio::test]
    async fn nodes_of_one_ca_connect_and_a_certificate_of_another_ca_is_refused_both_ways() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = Ca::new("ca7");
        let a = load(&ca.node_files(dir.path(), "a"), "a").expect("a");
        let b = load(&ca.node_files(dir.path(), "b"), "b").expect("b");
        for (client, server) in [(&a, &b), (&b, &a)] {
            let (served, dialled) = handshake(client, server).await;
            assert_eq!((served, dialled), (Ok(()), Ok(())));
        }

        // An intruder with its own CA's certificate, which also trusts the cluster's CA
        // (its certificate is public): it can check a node, but the node refuses it.
        let foreign = Ca::new("ca8").node_files(dir.path(), "x");
        let bundle = dir.path().join("both-ca.pem");
        let both = format!(
            "{}{}",
            ca.cert.pem(),
            std::fs::read_to_string(&foreign.ca).expect("read")
        );
        std::fs::write(&bundle, both).expect("write bundle");
        let intruder = load(
            &TlsFiles {
                ca: bundle,
                ..foreign
            },
            "x",
        )
        .expect("x");
        let (served, _) = handshake(&intruder, &a).await;
        let err = served.expect_err("a refuses x's client certificate");
        assert!(
            err.contains("invalid peer certificate: UnknownIssuer"),
            "{err}"
        );
        // And a node refuses it as a server.
        let (_, dialled) = handshake(&a, &intruder).await;
        let err = dialled.expect_err("a refuses x's server certificate");
        assert!(
            err.contains("invalid peer certificate: UnknownIssuer"),
            "{err}"
        );
    }
}
