//! Certificates for TLS tests, made at test time with rcgen: a CA, and a server certificate
//! for `localhost` signed by it, as PEM files in a temporary directory.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// A CA and a server certificate for `localhost`, as PEM files (deleted on drop).
pub struct TestPki {
    /// The directory holding the files.
    pub dir: tempfile::TempDir,
    /// The CA certificate: what clients trust.
    pub ca: PathBuf,
    /// The server's certificate chain (its certificate, signed by the CA).
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

impl TestPki {
    /// Makes a new CA and a server certificate for `localhost` and 127.0.0.1.
    pub fn new() -> TestPki {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "Feige test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, &ca).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("ca.pem"), ca.pem()).unwrap();
        std::fs::write(path("cert.pem"), cert.pem()).unwrap();
        std::fs::write(path("key.pem"), key.serialize_pem()).unwrap();
        TestPki {
            ca: path("ca.pem"),
            cert: path("cert.pem"),
            key: path("key.pem"),
            dir,
        }
    }

    /// Sets the server's `tls_cert` and `tls_key` to this certificate.
    pub fn serve(&self, config: &mut feige_server::Config) {
        config.tls_cert = Some(self.cert.clone());
        config.tls_key = Some(self.key.clone());
    }

    /// A client config for `server` that speaks TLS and trusts this CA.
    pub fn client(&self, server: &str, device: &str) -> feige_client::ClientConfig {
        feige_client::ClientConfig {
            device: device.to_owned(),
            tls: true,
            ca_file: Some(self.ca.clone()),
            ..feige_client::ClientConfig::new(server)
        }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}
