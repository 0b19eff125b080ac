//! A certificate authority made fresh for each test run, and the certificates it issues.
//!
//! Every peer serves https on loopback with a leaf certificate from this CA; clients trust it
//! through `SSL_CERT_FILE` or an explicit root, never by turning verification off.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// A per-run certificate authority.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// Where the CA certificate is written (usable as `SSL_CERT_FILE`).
    pub cert_path: PathBuf,
}

/// A certificate and its private key, in PEM and on disk.
#[derive(Clone)]
pub struct IssuedCert {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Certificate, DER.
    pub cert_der: Vec<u8>,
    /// PKCS#8 private key, PEM.
    pub key_pem: String,
    /// Where the certificate is written.
    pub cert_path: PathBuf,
    /// Where the key is written (mode 0600).
    pub key_path: PathBuf,
    /// The raw public key: PKCS#1 `RSAPublicKey` DER for RSA, the uncompressed point for EC.
    pub public_key_raw: Vec<u8>,
    /// The DER `SubjectPublicKeyInfo`.
    pub spki_der: Vec<u8>,
}

impl TestCa {
    /// Makes a CA and writes its certificate to `dir/ca.pem`.
    pub fn new(dir: &Path) -> Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = name("studio test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let cert_path = dir.join("ca.pem");
        std::fs::write(&cert_path, cert.pem()).context("writing ca.pem")?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_path,
            issuer: Issuer::new(params, key),
        })
    }

    /// Issues a server certificate for loopback (`127.0.0.1`, `::1`, `localhost`) and writes
    /// `dir/<stem>.pem` and `dir/<stem>-key.pem`.
    pub fn issue_server(&self, dir: &Path, stem: &str) -> Result<IssuedCert> {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
        params.distinguished_name = name(stem);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        write_pair(dir, stem, cert.pem(), cert.der().to_vec(), &key)
    }
}

/// A self-signed certificate for signing tokens or assertions (not for TLS): ECDSA P-256 when
/// `rsa` is false, RSA 2048 otherwise. Written as `dir/<stem>.pem` and `dir/<stem>-key.pem`.
pub fn self_signed_signer(dir: &Path, stem: &str, rsa: bool) -> Result<IssuedCert> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = name(stem);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = if rsa {
        KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)?
    } else {
        KeyPair::generate()?
    };
    let cert = params.self_signed(&key)?;
    write_pair(dir, stem, cert.pem(), cert.der().to_vec(), &key)
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn write_pair(
    dir: &Path,
    stem: &str,
    cert_pem: String,
    cert_der: Vec<u8>,
    key: &KeyPair,
) -> Result<IssuedCert> {
    let key_pem = key.serialize_pem();
    let cert_path = dir.join(format!("{stem}.pem"));
    let key_path = dir.join(format!("{stem}-key.pem"));
    std::fs::write(&cert_path, &cert_pem)?;
    crate::write_private(&key_path, key_pem.as_bytes())?;
    Ok(IssuedCert {
        cert_pem,
        cert_der,
        key_pem,
        cert_path,
        key_path,
        public_key_raw: key.public_key_raw().to_vec(),
        spki_der: rcgen::PublicKeyData::subject_public_key_info(key),
    })
}

/// The public JWK (`kty` RSA, `n`, `e`, `kid`, `x5t#S256`, `x5c`) of an RSA certificate made by
/// [`self_signed_signer`], as a relying party registers a certificate credential.
pub fn rsa_public_jwk(cert: &IssuedCert) -> Result<serde_json::Value> {
    use base64::Engine;
    use sha2::Digest;
    let b64u = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (n, e) = parse_rsa_public_key(&cert.public_key_raw)?;
    let thumb = b64u.encode(sha2::Sha256::digest(&cert.cert_der));
    Ok(serde_json::json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": thumb,
        "n": b64u.encode(n),
        "e": b64u.encode(e),
        "x5t#S256": thumb,
        "x5c": [base64::engine::general_purpose::STANDARD.encode(&cert.cert_der)],
    }))
}

/// The public JWK (`kty` EC, `crv` P-256, `x`, `y`, `kid`, `x5t#S256`, `x5c`) of an ECDSA P-256
/// certificate made by [`self_signed_signer`].
pub fn ec_public_jwk(cert: &IssuedCert) -> Result<serde_json::Value> {
    use base64::Engine;
    use sha2::Digest;
    let b64u = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let point = &cert.public_key_raw;
    anyhow::ensure!(
        point.len() == 65 && point[0] == 4,
        "not an uncompressed P-256 point"
    );
    let thumb = b64u.encode(sha2::Sha256::digest(&cert.cert_der));
    Ok(serde_json::json!({
        "kty": "EC",
        "crv": "P-256",
        "use": "sig",
        "alg": "ES256",
        "kid": thumb,
        "x": b64u.encode(&point[1..33]),
        "y": b64u.encode(&point[33..]),
        "x5t#S256": thumb,
        "x5c": [base64::engine::general_purpose::STANDARD.encode(&cert.cert_der)],
    }))
}

/// Splits a PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn parse_rsa_public_key(der: &[u8]) -> Result<(&[u8], &[u8])> {
    fn tlv(input: &[u8], tag: u8) -> Result<(&[u8], &[u8])> {
        anyhow::ensure!(input.len() >= 2 && input[0] == tag, "unexpected DER tag");
        let (len, header) = match input[1] {
            l if l < 0x80 => (l as usize, 2),
            l => {
                let n = (l & 0x7f) as usize;
                anyhow::ensure!(n <= 4 && input.len() >= 2 + n, "bad DER length");
                let len = input[2..2 + n]
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | *b as usize);
                (len, 2 + n)
            }
        };
        anyhow::ensure!(input.len() >= header + len, "truncated DER");
        Ok((&input[header..header + len], &input[header + len..]))
    }
    let (seq, _) = tlv(der, 0x30)?;
    let (n, rest) = tlv(seq, 0x02)?;
    let (e, _) = tlv(rest, 0x02)?;
    let trim = |x: &[u8]| -> usize { x.iter().take_while(|b| **b == 0).count() };
    Ok((&n[trim(n)..], &e[trim(e)..]))
}
