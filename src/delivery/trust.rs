//! Which certificates the SMTP client trusts: the built-in web roots
//! (webpki-roots), plus the CA certificates of `[delivery.smtp] ca_file` for
//! a relay whose certificate a private CA signed. A certificate is always
//! verified, never accepted unchecked. No system store is read, so
//! `SSL_CERT_FILE` and `/etc/ssl` have no effect: `ca_file` is the one way to
//! add a CA.

use std::path::Path;

use lettre::transport::smtp::client::{Certificate, TlsParameters};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::diagnostics::display_path;

/// The CA certificates of a `ca_file`, checked as far as can be without a
/// server: the file reads, holds at least one `CERTIFICATE` block, and each
/// block is a certificate rustls accepts as a root. The error is in our
/// words and names the file, for a config problem or a setup error.
pub fn read_ca_file(path: &Path) -> Result<Certificate, String> {
    let shown = display_path(path);
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let count = CertificateDer::pem_slice_iter(&pem)
        .try_fold(0usize, |n, block| block.map(|_| n + 1))
        .map_err(|e| format!("{shown} is not a readable PEM file ({e})"))?;
    if count == 0 {
        return Err(format!(
            "{shown} holds no certificate; expected the relay's CA certificate as PEM (\"-----BEGIN CERTIFICATE-----\")"
        ));
    }
    let certificate = Certificate::from_pem(&pem)
        .map_err(|e| format!("{shown} is not a readable PEM file ({e})"))?;
    // rustls parses each root only when the TLS settings are built: do it
    // now, so a broken certificate shows at `shorts check`, not at send time.
    TlsParameters::builder("localhost".to_string())
        .add_root_certificate(certificate.clone())
        .build()
        .map_err(|e| {
            let cause =
                std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string);
            format!("{shown} holds a certificate that cannot serve as a CA ({cause})")
        })?;
    Ok(certificate)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/ca.pem");

    fn read(text: &[u8]) -> Result<Certificate, String> {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("relay-ca.pem");
        std::fs::write(&path, text).expect("write the file");
        read_ca_file(&path)
    }

    #[test]
    fn a_ca_certificate_is_read() {
        assert!(read_ca_file(Path::new(CA)).is_ok());
        let two = [std::fs::read(CA).unwrap(), std::fs::read(CA).unwrap()].concat();
        assert!(read(&two).is_ok(), "a bundle of several");
    }

    #[test]
    fn a_file_without_a_usable_certificate_is_named_with_what_is_wrong() {
        let missing = read_ca_file(Path::new("/nonexistent/relay-ca.pem")).unwrap_err();
        assert!(
            missing.starts_with("cannot read /nonexistent/relay-ca.pem: "),
            "{missing}"
        );
        for (text, says) in [
            (&b""[..], "holds no certificate"),
            (
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "holds no certificate",
            ),
            (
                b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
                "cannot serve as a CA",
            ),
            (
                b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
                "is not a readable PEM file",
            ),
        ] {
            let message = read(text).unwrap_err();
            assert!(message.contains(says), "{message}");
            assert!(message.contains("relay-ca.pem"), "{message}");
        }
    }
}
