//! TUF public keys: parsing key objects, key ids and signature verification with ring.
//!
//! Supported, as TUF 1.0 lists them:
//! - keytype `ed25519`, scheme `ed25519`, public key as 64 hex characters;
//! - keytype `ecdsa` or `ecdsa-sha2-nistp256`, scheme `ecdsa-sha2-nistp256`, public key as a PEM
//!   SubjectPublicKeyInfo. Hex of the DER or of the raw point is also read, because go-tuf wrote
//!   keys that way. Signatures are DER-encoded over SHA-256;
//! - keytype `rsa`, scheme `rsassa-pss-sha256`, public key as a PEM SubjectPublicKeyInfo of at
//!   least 2048 bits; PSS with MGF1-SHA256 and a 32-byte salt.

use ring::digest::{digest, SHA256};
use ring::signature::{self, UnparsedPublicKey};
use serde_json::{json, Map, Value};

use crate::canonical::{to_canonical, CanonicalError};

/// Error for a rejected key object or key id.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key is not a JSON object with string fields keytype, scheme and keyval.public")]
    Malformed,

    #[error("unsupported key: keytype {keytype:?} with scheme {scheme:?}; supported are ed25519/ed25519, ecdsa/ecdsa-sha2-nistp256 and rsa/rsassa-pss-sha256")]
    Unsupported { keytype: String, scheme: String },

    #[error("invalid {keytype} public key: {reason}")]
    InvalidPublic { keytype: String, reason: &'static str },

    #[error("key id {key_id} is not the SHA-256 of the key's canonical JSON (expected {expected})")]
    KeyIdMismatch { key_id: String, expected: String },

    #[error(transparent)]
    Canonical(#[from] CanonicalError),
}

/// The signature algorithm a key is used with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Ed25519,
    EcdsaP256Sha256,
    RsaPssSha256,
}

/// A parsed public key, ready to verify signatures.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    scheme: Scheme,
    /// Key bytes in the form ring expects: the raw Ed25519 key, the uncompressed P-256 point, or
    /// the PKCS#1 RSAPublicKey DER.
    material: Vec<u8>,
}

impl PublicKey {
    /// Parses a TUF key object. Unknown fields are allowed and ignored here (they still count in
    /// the key id).
    pub fn from_tuf(value: &Value) -> Result<PublicKey, KeyError> {
        let object = value.as_object().ok_or(KeyError::Malformed)?;
        let field = |name: &str| object.get(name).and_then(Value::as_str).ok_or(KeyError::Malformed);
        let keytype = field("keytype")?;
        let scheme = field("scheme")?;
        let public = object
            .get("keyval")
            .and_then(|keyval| keyval.get("public"))
            .and_then(Value::as_str)
            .ok_or(KeyError::Malformed)?;
        let invalid = |reason| KeyError::InvalidPublic { keytype: keytype.to_owned(), reason };

        match (keytype, scheme) {
            ("ed25519", "ed25519") => {
                let material = hex::decode(public).map_err(|_| invalid("not hex"))?;
                if material.len() != 32 {
                    return Err(invalid("an Ed25519 public key is 32 bytes (64 hex characters)"));
                }
                Ok(PublicKey { scheme: Scheme::Ed25519, material })
            }
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => {
                let material = parse_ecdsa_public(public).map_err(invalid)?;
                Ok(PublicKey { scheme: Scheme::EcdsaP256Sha256, material })
            }
            ("rsa", "rsassa-pss-sha256") => {
                let material = parse_rsa_public(public).map_err(invalid)?;
                Ok(PublicKey { scheme: Scheme::RsaPssSha256, material })
            }
            _ => Err(KeyError::Unsupported { keytype: keytype.to_owned(), scheme: scheme.to_owned() }),
        }
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Verifies `sig` over `message`. Returns false for any malformed or wrong signature.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let algorithm: &dyn signature::VerificationAlgorithm = match self.scheme {
            Scheme::Ed25519 => &signature::ED25519,
            Scheme::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1,
            Scheme::RsaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(algorithm, &self.material).verify(message, sig).is_ok()
    }

    /// Builds the TUF key object for an Ed25519 public key.
    pub fn ed25519_tuf_object(public: &[u8]) -> Value {
        json!({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": hex::encode(public)}})
    }

    /// Builds the TUF key object for an uncompressed P-256 point, with a PEM public key.
    pub fn ecdsa_p256_tuf_object(point: &[u8]) -> Value {
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.extend_from_slice(point);
        let pem = pem::encode_config(
            &pem::Pem::new("PUBLIC KEY", der),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        );
        json!({"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": pem}})
    }
}

/// Computes the key id of a key object: hex SHA-256 of its canonical JSON, all fields included.
pub fn key_id(key: &Value) -> Result<String, KeyError> {
    Ok(hex::encode(digest(&SHA256, &to_canonical(key)?)))
}

/// Checks that `key_id` names `key`. TUF 1.0 defines the key id over the whole key object;
/// python-tuf (securesystemslib) hashes only `keytype`, `scheme` and `keyval`, so for keys that
/// carry extra fields that id is accepted too.
pub fn check_key_id(key_id_given: &str, key: &Value) -> Result<(), KeyError> {
    let full = key_id(key)?;
    if key_id_given == full {
        return Ok(());
    }
    let object = key.as_object().ok_or(KeyError::Malformed)?;
    let mut minimal = Map::new();
    for field in ["keytype", "scheme", "keyval"] {
        if let Some(value) = object.get(field) {
            minimal.insert(field.to_owned(), value.clone());
        }
    }
    let minimal = key_id(&Value::Object(minimal))?;
    if key_id_given == minimal {
        return Ok(());
    }
    Err(KeyError::KeyIdMismatch { key_id: key_id_given.to_owned(), expected: full })
}

/// DER prefix of a SubjectPublicKeyInfo for an uncompressed P-256 point (id-ecPublicKey,
/// prime256v1, BIT STRING of 66 bytes).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

fn parse_ecdsa_public(public: &str) -> Result<Vec<u8>, &'static str> {
    let der = if public.trim_start().starts_with("-----BEGIN") {
        decode_pem_public(public)?
    } else {
        let bytes = hex::decode(public).map_err(|_| "neither PEM nor hex")?;
        if bytes.len() == 65 && bytes[0] == 0x04 {
            return Ok(bytes);
        }
        bytes
    };
    let (algorithm, parameters, key) = parse_spki(&der)?;
    if algorithm != OID_EC_PUBLIC_KEY || parameters != Some(OID_PRIME256V1) {
        return Err("not a P-256 SubjectPublicKeyInfo");
    }
    if key.len() != 65 || key[0] != 0x04 {
        return Err("not an uncompressed P-256 point");
    }
    Ok(key.to_vec())
}

fn parse_rsa_public(public: &str) -> Result<Vec<u8>, &'static str> {
    let der = decode_pem_public(public)?;
    let (algorithm, _, key) = parse_spki(&der)?;
    if algorithm != OID_RSA_ENCRYPTION {
        return Err("not an RSA SubjectPublicKeyInfo");
    }

    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
    let mut outer = Der::new(key);
    let mut sequence = Der::new(outer.read(0x30)?);
    let mut modulus = sequence.read(0x02)?;
    while modulus.first() == Some(&0) {
        modulus = &modulus[1..];
    }
    let bits = modulus.len() * 8 - modulus.first().map_or(8, |b| b.leading_zeros() as usize);
    if bits < 2048 {
        return Err("RSA keys must have at least 2048 bits");
    }
    if bits > 8192 {
        return Err("RSA keys must have at most 8192 bits");
    }
    Ok(key.to_vec())
}

fn decode_pem_public(public: &str) -> Result<Vec<u8>, &'static str> {
    let parsed = pem::parse(public).map_err(|_| "not a PEM block")?;
    if parsed.tag() != "PUBLIC KEY" {
        return Err("PEM block is not a PUBLIC KEY");
    }
    Ok(parsed.into_contents())
}

/// Splits a SubjectPublicKeyInfo into (algorithm OID, parameter OID if any, key bytes).
fn parse_spki(der: &[u8]) -> Result<(&[u8], Option<&[u8]>, &[u8]), &'static str> {
    let mut outer = Der::new(der);
    let mut spki = Der::new(outer.read(0x30)?);
    if !outer.is_empty() {
        return Err("trailing data after SubjectPublicKeyInfo");
    }
    let mut algorithm = Der::new(spki.read(0x30)?);
    let oid = algorithm.read(0x06)?;
    let parameters = if algorithm.peek_tag() == Some(0x06) { Some(algorithm.read(0x06)?) } else { None };
    let bits = spki.read(0x03)?;
    match bits.split_first() {
        Some((0, key)) => Ok((oid, parameters, key)),
        _ => Err("malformed BIT STRING in SubjectPublicKeyInfo"),
    }
}

/// A minimal reader for the DER subset that public keys use.
struct Der<'a> {
    input: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(input: &'a [u8]) -> Der<'a> {
        Der { input }
    }

    fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.input.first().copied()
    }

    fn read(&mut self, tag: u8) -> Result<&'a [u8], &'static str> {
        const MALFORMED: &str = "malformed DER";
        let (&found, rest) = self.input.split_first().ok_or(MALFORMED)?;
        if found != tag {
            return Err(MALFORMED);
        }
        let (&first, mut rest) = rest.split_first().ok_or(MALFORMED)?;
        let length = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return Err(MALFORMED);
            }
            let mut length = 0usize;
            for &b in &rest[..count] {
                length = (length << 8) | usize::from(b);
            }
            rest = &rest[count..];
            length
        };
        if rest.len() < length {
            return Err(MALFORMED);
        }
        let (content, remaining) = rest.split_at(length);
        self.input = remaining;
        Ok(content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

    fn ed25519() -> (Ed25519KeyPair, Value) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let object = PublicKey::ed25519_tuf_object(pair.public_key().as_ref());
        (pair, object)
    }

    #[test]
    fn ed25519_signature_verifies() {
        let (pair, object) = ed25519();
        let key = PublicKey::from_tuf(&object).unwrap();
        let sig = pair.sign(b"message");
        assert!(key.verify(b"message", sig.as_ref()));
        assert!(!key.verify(b"other message", sig.as_ref()));
    }

    #[test]
    fn ecdsa_pem_key_round_trips() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let object = PublicKey::ecdsa_p256_tuf_object(pair.public_key().as_ref());
        let key = PublicKey::from_tuf(&object).unwrap();
        let sig = pair.sign(&rng, b"message").unwrap();
        assert!(key.verify(b"message", sig.as_ref()));
        assert!(!key.verify(b"messagf", sig.as_ref()));
    }

    #[test]
    fn legacy_ecdsa_keytype_is_read() {
        let object = PublicKey::ecdsa_p256_tuf_object(&[4; 65]);
        let mut legacy = object.clone();
        legacy["keytype"] = json!("ecdsa-sha2-nistp256");
        assert!(PublicKey::from_tuf(&legacy).is_ok());
    }

    #[test]
    fn rejects_unsupported_and_malformed_keys() {
        let cases = [
            json!({"keytype": "ed25519", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": "00"}}),
            json!({"keytype": "dsa", "scheme": "dsa", "keyval": {"public": "00"}}),
            json!({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "abcd"}}),
            json!({"keytype": "ed25519", "scheme": "ed25519", "keyval": {}}),
            json!({"keytype": "rsa", "scheme": "rsassa-pss-sha256", "keyval": {"public": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}}),
            json!("not an object"),
        ];
        for case in cases {
            assert!(PublicKey::from_tuf(&case).is_err(), "{case}");
        }
    }

    #[test]
    fn key_id_is_checked() {
        let (_, object) = ed25519();
        let id = key_id(&object).unwrap();
        assert!(check_key_id(&id, &object).is_ok());
        let wrong = "0".repeat(64);
        assert!(matches!(check_key_id(&wrong, &object), Err(KeyError::KeyIdMismatch { .. })));
    }

    #[test]
    fn python_tuf_key_id_accepted() {
        let (_, object) = ed25519();
        let minimal_id = key_id(&object).unwrap();
        let mut extended = object.clone();
        extended["keyid_hash_algorithms"] = json!(["sha256", "sha512"]);
        assert!(check_key_id(&minimal_id, &extended).is_ok());
        assert!(check_key_id(&key_id(&extended).unwrap(), &extended).is_ok());
    }
    /// An RSA-2048 public key and an RSA-PSS (SHA-256, MGF1, 32-byte salt) signature over
    /// `RSA_MESSAGE`, made with `openssl dgst -sha256 -sigopt rsa_padding_mode:pss
    /// -sigopt rsa_pss_saltlen:32`.
    const RSA_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAn/ofXXJbw4+bqBC7eOyw\nzLpIlt1uf3WT000mqUCkppvjyTm5zjK6CoGfzS+qCzxVTaiRFUvuzYI6Ea/pUKYV\nEGUnl3r1MgN6ucyCOQgaWVOaSH1rcoMzXkxIX7jfuACpdC1dH8We1D1/bEmZZvKw\nLTJ0OgOSgMrRdX6RjOmskIJMl3Ed/GF9xJCKFvkCA4XAT3RYFLVhBbuqII+h40tV\nAVvSRt+z/Og2Fp67INMeXc+mYdvDW9KK8GgfMKt64pw5MI8pmAS+5Qd6nSH27/hR\nb4vJVUNjeg9PortOOQrT2GG9YXINoStWlRbru8GmtDgabK7WYur05aUWiubcARqb\nPwIDAQAB\n-----END PUBLIC KEY-----\n";
    const RSA_MESSAGE: &[u8] = b"signet rsa-pss test message";
    const RSA_SIGNATURE: &str = "7ce17b8bb29dd6d70f95f6542da1305ab8977ba78731bdb87d941627e6efdeb58a8b8b7c259ae9ca3174a078436626f2725e79a3cdae879012687b1d7f5663659417cb5327e5965307651d2ba9b187697d7b108cc49af44251e9555c27a71a18df18821aa64b5230c7aca0de2077cf8b6783ad7b051ec9108d4f15afa2a2d2558fdfcc58030219801b9e6673c133984c54ae9e24617280e3c45ac8b26a621de31678028f1f2607a3a076b63529621d2d30352463ff13f593fb1323ad9ebd49affd6eac4b61096de5baa6f499c60de9f2f47f62b2a2a5b0e1436074b4846c3b8e4e6d44a020bdaac37622cd5850215fe245709dc7ec7fb7294c146bf6e2c54eff";
    const RSA_1024_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCik+hSLeuyUlcp1p99QaFSN38k\n6WP1OA2DY/AJJ4HeAsAvy9/5VjHWAM115KDb5tovLFQc6amaZSaKwzaMBvgRN0pp\nzTEjL9nv9yBZbab5haYAfL1o7A3diiC4htoQn2uQ9fvaQicR7MWvlgHRyYR93K2P\n2n/m6Tmb/OQgVwAukwIDAQAB\n-----END PUBLIC KEY-----\n";

    #[test]
    fn rsa_pss_signature_verifies() {
        let object = json!({"keytype": "rsa", "scheme": "rsassa-pss-sha256", "keyval": {"public": RSA_PUBLIC}});
        let key = PublicKey::from_tuf(&object).unwrap();
        let sig = hex::decode(RSA_SIGNATURE).unwrap();
        assert!(key.verify(RSA_MESSAGE, &sig));
        assert!(!key.verify(b"another message", &sig));
    }

    #[test]
    fn rsa_keys_below_2048_bits_rejected() {
        let object = json!({"keytype": "rsa", "scheme": "rsassa-pss-sha256", "keyval": {"public": RSA_1024_PUBLIC}});
        let err = PublicKey::from_tuf(&object).unwrap_err();
        assert!(err.to_string().contains("at least 2048 bits"), "{err}");
    }
}
