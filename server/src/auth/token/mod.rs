//! Bearer tokens in the Docker registry token format: verification, access checks and signing.
//!
//! A token is a JWT in the JWS compact serialization. Its `access` claim lists what the bearer
//! may do, as in the Docker registry token scheme:
//! `{"type": "repository", "name": "registry.example/team/*", "actions": ["pull", "push"]}`.
//! Tokens come from an external token service, whose public keys are configured from a PEM or
//! JWKS file, or from the server's built-in Ed25519 issuer ([`TokenSigner`]).
//!
//! Keys that a token header embeds or points to (`jwk`, `jku`, `x5c`, `x5u`) are ignored, so only
//! configured keys can make a token valid.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pkcs8::der::asn1::UintRef;
use pkcs8::der::{Decode, Reader, SliceReader};
use pkcs8::spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};
use ring::signature::{self, Ed25519KeyPair, KeyPair, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Maximum length of a token in bytes. Longer tokens are rejected before any parsing.
pub const MAX_TOKEN_LENGTH: usize = 16 * 1024;

/// Maximum size of a key file in bytes.
pub const MAX_KEY_FILE_SIZE: u64 = 1024 * 1024;

/// Minimum and maximum RSA modulus sizes in bits.
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// Largest RSA public exponent that ring accepts, 2^33 - 1.
const RSA_MAX_EXPONENT: u64 = (1 << 33) - 1;

/// Number of hex characters of the SHA-256 digest that form a built-in issuer key id.
const KEY_ID_HEX_LENGTH: usize = 32;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Registered JOSE algorithm names that are recognized but rejected. An error names only these,
/// so that no text from a token reaches an error message.
const REJECTED_ALGORITHMS: [&str; 10] = [
    "none", "HS256", "HS384", "HS512", "PS256", "PS384", "PS512", "ES512", "ES256K", "Ed448",
];

/// Errors from parsing keys and from verifying or signing tokens.
///
/// No message contains token text or key material.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),

    #[error("token is longer than {MAX_TOKEN_LENGTH} bytes")]
    TooLong,

    #[error(
        "unsupported token signature algorithm: {0} (accepted algorithms are ES256, ES384, \
         RS256, RS384, RS512 and EdDSA)"
    )]
    UnsupportedAlgorithm(String),

    #[error("no configured token key matches the token's algorithm and key id")]
    UnknownKey,

    #[error("token signature does not verify with any matching configured key")]
    BadSignature,

    #[error("token has expired")]
    Expired,

    #[error("token is not valid yet (nbf is in the future)")]
    NotYetValid,

    #[error("token issuer (iss) is not the expected issuer {expected:?}")]
    WrongIssuer { expected: String },

    #[error("token audience (aud) does not include the expected audience {expected:?}")]
    WrongAudience { expected: String },

    #[error("failed to read token key file {}", path.display())]
    ReadKeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid token key file {}", path.display())]
    InvalidKeyFile {
        path: PathBuf,
        #[source]
        reason: Box<TokenError>,
    },

    #[error("invalid token key: {0}")]
    InvalidKey(String),

    #[error("failed to generate a token signing key")]
    KeyGeneration,

    #[error("failed to sign the token")]
    Signing,

    #[error("token was revoked, or was not issued by this server")]
    Revoked,
}

/// An action on a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read metadata.
    Pull,
    /// Publish metadata.
    Push,
    /// Every action, including delete and key rotation. Only the `*` action grants it.
    All,
}

impl Action {
    /// Returns the action's name in the `actions` list of a token: `pull`, `push` or `*`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::All => "*",
        }
    }
}

/// One entry of the `access` claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// Resource type: `repository`, or `admin` for server-wide endpoints.
    #[serde(rename = "type")]
    pub kind: String,
    /// Resource name, a pattern for [`pattern_matches`] when the type is `repository`.
    pub name: String,
    /// Granted actions: `pull`, `push` or `*`. Token services may send `null` for none.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub actions: Vec<String>,
}

impl Access {
    fn grants(&self, action: Action) -> bool {
        self.actions
            .iter()
            .any(|granted| granted == "*" || granted == action.as_str())
    }
}

/// The `aud` claim: one audience or a list of them.
///
/// JSON accepts a string or an array of strings. A single audience serializes as a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audience(Vec<String>);

impl Audience {
    /// Creates an audience with one value.
    pub fn single(audience: impl Into<String>) -> Audience {
        Audience(vec![audience.into()])
    }

    /// Creates an audience from a list of values.
    pub fn from_list(audiences: Vec<String>) -> Audience {
        Audience(audiences)
    }

    /// Returns the audience values.
    pub fn values(&self) -> &[String] {
        &self.0
    }

    /// Returns true when one of the values equals `audience`.
    pub fn contains(&self, audience: &str) -> bool {
        self.0.iter().any(|value| value == audience)
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [single] => serializer.serialize_str(single),
            list => list.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Encoded {
            Single(String),
            List(Vec<String>),
        }

        Ok(match Encoded::deserialize(deserializer)? {
            Encoded::Single(value) => Audience(vec![value]),
            Encoded::List(values) => Audience(values),
        })
    }
}

/// The claims of a token. Times are seconds since the Unix epoch.
///
/// NOTE: RFC 7519 allows fractional times, but these fields accept only integers, which is what
/// Docker registry token services send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject: the account the token was issued to.
    pub sub: String,
    /// Audience: the services that may accept the token.
    pub aud: Audience,
    /// Expiration time.
    pub exp: i64,
    /// Not-before time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issued-at time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Granted access. A missing or `null` claim grants nothing.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub access: Vec<Access>,
}

impl Claims {
    /// Returns true when an `access` entry of type `repository` whose name pattern matches `gun`
    /// lists the action or `*`.
    ///
    /// `*` grants pull, push and [`Action::All`]. Push does not imply pull, and [`Action::All`]
    /// needs `*`.
    pub fn allows(&self, gun: &str, action: Action) -> bool {
        self.access.iter().any(|entry| {
            entry.kind == "repository" && pattern_matches(&entry.name, gun) && entry.grants(action)
        })
    }

    /// Returns true when the token carries `{"type": "admin", "name": "*", "actions": ["*"]}`,
    /// which grants the server-wide endpoints.
    pub fn is_admin(&self) -> bool {
        self.access
            .iter()
            .any(|entry| entry.kind == "admin" && entry.name == "*" && entry.grants(Action::All))
    }
}

/// Returns true when the repository name pattern matches `gun`.
///
/// Both are split into segments on `/`. A `*` segment in the middle matches exactly one whole
/// segment, and a `*` as the last segment matches one or more whole segments. A `*` never matches
/// an empty segment. A `*` inside a segment (`team-*`) is a literal character, and there is no
/// other glob syntax. Comparison is exact and case-sensitive. An empty pattern or name never
/// matches.
pub fn pattern_matches(pattern: &str, gun: &str) -> bool {
    if pattern.is_empty() || gun.is_empty() {
        return false;
    }

    let mut pattern_segments = pattern.split('/').peekable();
    let mut gun_segments = gun.split('/');

    while let Some(pattern_segment) = pattern_segments.next() {
        let is_last = pattern_segments.peek().is_none();

        if pattern_segment == "*" && is_last {
            let mut matched = 0usize;
            for gun_segment in gun_segments.by_ref() {
                if gun_segment.is_empty() {
                    return false;
                }
                matched += 1;
            }
            return matched > 0;
        }

        let Some(gun_segment) = gun_segments.next() else {
            return false;
        };
        let segment_matches = if pattern_segment == "*" {
            !gun_segment.is_empty()
        } else {
            pattern_segment == gun_segment
        };
        if !segment_matches {
            return false;
        }
    }

    gun_segments.next().is_none()
}

/// Expected issuer and audience, and the allowed clock skew in seconds for `exp` and `nbf`.
#[derive(Clone, Debug)]
pub struct Validation {
    pub issuer: String,
    pub audience: String,
    /// A negative value counts as zero.
    pub leeway_seconds: i64,
}

/// Verifies a token in the JWS compact serialization and returns its claims.
///
/// The header `alg` must be ES256, ES384, RS256, RS384, RS512 or EdDSA. When the header has a
/// `kid` that some configured key has, only keys with that `kid` are tried. Otherwise every key
/// whose type fits the algorithm is tried. After the signature, the checks are: `iss` equals the
/// expected issuer, `aud` is or contains the expected audience, `exp > now - leeway`, and `nbf`
/// (when present) `<= now + leeway`. `now` is in seconds since the Unix epoch.
pub fn verify(
    token: &str,
    keys: &VerifyingKeys,
    validation: &Validation,
    now: i64,
) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_LENGTH {
        return Err(TokenError::TooLong);
    }
    if token.is_empty() {
        return Err(TokenError::Malformed("the token is empty"));
    }

    let mut parts = token.split('.');
    let (Some(header_part), Some(payload_part), Some(signature_part), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed(
            "expected three base64url parts separated by '.'",
        ));
    };

    let header_json = decode_base64url(header_part).ok_or(TokenError::Malformed(
        "the header is not unpadded base64url",
    ))?;
    let header: Header = serde_json::from_slice(&header_json)
        .map_err(|_| TokenError::Malformed("the header is not a JSON object with a string alg"))?;
    // RFC 7515 section 4.1.11: a recipient must reject critical extensions it does not support,
    // and this verifier supports none.
    if header.crit.is_some() {
        return Err(TokenError::Malformed(
            "the header lists critical extensions (crit), which are not supported",
        ));
    }
    let algorithm = Algorithm::from_name(&header.alg)?;

    let signature = decode_base64url(signature_part).ok_or(TokenError::Malformed(
        "the signature is not unpadded base64url",
    ))?;
    let signing_input_length = header_part.len() + 1 + payload_part.len();
    let signing_input = token
        .as_bytes()
        .get(..signing_input_length)
        .ok_or(TokenError::Malformed("the signing input is out of range"))?;
    keys.verify_signature(algorithm, header.kid.as_deref(), signing_input, &signature)?;

    // Only now, with the signature verified, is the payload parsed.
    let payload = decode_base64url(payload_part).ok_or(TokenError::Malformed(
        "the payload is not unpadded base64url",
    ))?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| {
        TokenError::Malformed("the claims are not a JSON object with the expected fields")
    })?;

    check_claims(&claims, validation, now)?;
    Ok(claims)
}

fn check_claims(claims: &Claims, validation: &Validation, now: i64) -> Result<(), TokenError> {
    if claims.iss != validation.issuer {
        return Err(TokenError::WrongIssuer {
            expected: validation.issuer.clone(),
        });
    }
    if !claims.aud.contains(&validation.audience) {
        return Err(TokenError::WrongAudience {
            expected: validation.audience.clone(),
        });
    }

    let leeway = validation.leeway_seconds.max(0);
    if claims.exp <= now.saturating_sub(leeway) {
        return Err(TokenError::Expired);
    }
    if let Some(not_before) = claims.nbf {
        if not_before > now.saturating_add(leeway) {
            return Err(TokenError::NotYetValid);
        }
    }
    Ok(())
}

/// The JOSE header fields that verification reads. Other fields are ignored.
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// Decodes unpadded base64url, rejecting padding, the standard alphabet and non-zero trailing
/// bits.
fn decode_base64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// A JWS signature algorithm that tokens may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algorithm {
    Es256,
    Es384,
    Rs256,
    Rs384,
    Rs512,
    EdDsa,
}

impl Algorithm {
    /// Parses a JOSE `alg` name. `Ed25519` (RFC 9864) is accepted as another name for EdDSA.
    fn from_name(name: &str) -> Result<Algorithm, TokenError> {
        match name {
            "ES256" => Ok(Algorithm::Es256),
            "ES384" => Ok(Algorithm::Es384),
            "RS256" => Ok(Algorithm::Rs256),
            "RS384" => Ok(Algorithm::Rs384),
            "RS512" => Ok(Algorithm::Rs512),
            "EdDSA" | "Ed25519" => Ok(Algorithm::EdDsa),
            other => {
                let rejected_name = REJECTED_ALGORITHMS
                    .iter()
                    .find(|rejected| **rejected == other)
                    .map_or("an unrecognized name", |rejected| rejected);
                Err(TokenError::UnsupportedAlgorithm(rejected_name.to_string()))
            }
        }
    }

    fn fits(self, key: &PublicKey) -> bool {
        matches!(
            (self, key),
            (Algorithm::Es256, PublicKey::EcP256(_))
                | (Algorithm::Es384, PublicKey::EcP384(_))
                | (
                    Algorithm::Rs256 | Algorithm::Rs384 | Algorithm::Rs512,
                    PublicKey::Rsa { .. }
                )
                | (Algorithm::EdDsa, PublicKey::Ed25519(_))
        )
    }
}

/// A public key in the form ring verifies with.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PublicKey {
    /// Uncompressed SEC 1 point, 65 bytes.
    EcP256(Vec<u8>),
    /// Uncompressed SEC 1 point, 97 bytes.
    EcP384(Vec<u8>),
    /// Big-endian modulus and exponent without leading zero bytes.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Raw 32-byte key.
    Ed25519(Vec<u8>),
}

impl PublicKey {
    /// Returns true when `signature` is valid for `message`. A key whose type does not fit the
    /// algorithm never verifies.
    fn verifies(&self, algorithm: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        let result =
            match (algorithm, self) {
                (Algorithm::Es256, PublicKey::EcP256(point)) => {
                    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                        .verify(message, signature)
                }
                (Algorithm::Es384, PublicKey::EcP384(point)) => {
                    UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                        .verify(message, signature)
                }
                (Algorithm::Rs256, PublicKey::Rsa { n, e }) => RsaPublicKeyComponents { n, e }
                    .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature),
                (Algorithm::Rs384, PublicKey::Rsa { n, e }) => RsaPublicKeyComponents { n, e }
                    .verify(&signature::RSA_PKCS1_2048_8192_SHA384, message, signature),
                (Algorithm::Rs512, PublicKey::Rsa { n, e }) => RsaPublicKeyComponents { n, e }
                    .verify(&signature::RSA_PKCS1_2048_8192_SHA512, message, signature),
                (Algorithm::EdDsa, PublicKey::Ed25519(key)) => {
                    UnparsedPublicKey::new(&signature::ED25519, key).verify(message, signature)
                }
                _ => return false,
            };
        result.is_ok()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct VerifyingKey {
    kid: Option<String>,
    /// The only algorithm this key may verify, from a JWK's `alg` member.
    algorithm: Option<Algorithm>,
    key: PublicKey,
}

impl VerifyingKey {
    fn fits(&self, algorithm: Algorithm) -> bool {
        algorithm.fits(&self.key) && self.algorithm.is_none_or(|only| only == algorithm)
    }
}

/// Public keys that may sign tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyingKeys {
    keys: Vec<VerifyingKey>,
}

impl VerifyingKeys {
    /// Creates an empty set, with which no token verifies.
    pub fn new() -> VerifyingKeys {
        VerifyingKeys::default()
    }

    /// Reads keys from a PEM file or a JWKS document.
    ///
    /// A file whose first non-whitespace byte is `{` is read as JWKS, any other as PEM. Files
    /// larger than [`MAX_KEY_FILE_SIZE`] are rejected.
    pub fn from_file(path: &Path) -> Result<VerifyingKeys, TokenError> {
        let read_error = |source| TokenError::ReadKeyFile {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let mut contents = Vec::new();
        file.take(MAX_KEY_FILE_SIZE + 1)
            .read_to_end(&mut contents)
            .map_err(read_error)?;

        let invalid = |reason| TokenError::InvalidKeyFile {
            path: path.to_path_buf(),
            reason: Box::new(reason),
        };
        if contents.len() as u64 > MAX_KEY_FILE_SIZE {
            return Err(invalid(TokenError::InvalidKey(format!(
                "the file is larger than {MAX_KEY_FILE_SIZE} bytes"
            ))));
        }

        let first_byte = contents.iter().find(|byte| !byte.is_ascii_whitespace());
        let parsed = if first_byte == Some(&b'{') {
            VerifyingKeys::from_jwks(&contents)
        } else {
            match std::str::from_utf8(&contents) {
                Ok(text) => VerifyingKeys::from_pem(text),
                Err(_) => Err(TokenError::InvalidKey(
                    "the file is neither JWKS JSON nor PEM text".to_string(),
                )),
            }
        };
        parsed.map_err(invalid)
    }

    /// Parses one or more `PUBLIC KEY` (SubjectPublicKeyInfo), `RSA PUBLIC KEY` (PKCS #1) or
    /// `CERTIFICATE` blocks.
    ///
    /// Supported keys are ECDSA P-256 and P-384, RSA of 2048 to 8192 bits and Ed25519. A
    /// certificate only carries its key: its validity period, issuer and extensions are not
    /// checked. Keys from PEM have no key id.
    pub fn from_pem(text: &str) -> Result<VerifyingKeys, TokenError> {
        let blocks = pem::parse_many(text)
            .map_err(|_| TokenError::InvalidKey("the PEM text is not well formed".to_string()))?;
        if blocks.is_empty() {
            return Err(TokenError::InvalidKey(
                "no PUBLIC KEY or CERTIFICATE block found".to_string(),
            ));
        }

        let mut keys = Vec::with_capacity(blocks.len());
        for (index, block) in blocks.iter().enumerate() {
            let number = index + 1;
            let tag = block.tag();
            let key = match tag {
                "PUBLIC KEY" => public_key_from_spki(block.contents()),
                "RSA PUBLIC KEY" => rsa_key_from_pkcs1(block.contents()),
                "CERTIFICATE" => public_key_from_certificate(block.contents()),
                _ if tag.contains("PRIVATE KEY") => Err(format!(
                    "it is a private key ({tag}), but a public key or certificate is expected"
                )),
                _ => Err(format!(
                    "its type {tag} is not supported (expected PUBLIC KEY or CERTIFICATE)"
                )),
            }
            .map_err(|reason| TokenError::InvalidKey(format!("PEM block {number}: {reason}")))?;
            keys.push(VerifyingKey {
                kid: None,
                algorithm: None,
                key,
            });
        }
        Ok(VerifyingKeys { keys })
    }

    /// Parses a JWKS document: `{"keys": [...]}` with `kty` EC (P-256, P-384), RSA or OKP
    /// (Ed25519), and optional `kid`, `alg` and `use`.
    ///
    /// Keys with a `use` other than `sig` are skipped. A key with `alg` verifies only that
    /// algorithm. A key with private members (`d`, `k`) is rejected, as is a document without a
    /// signing key.
    pub fn from_jwks(json: &[u8]) -> Result<VerifyingKeys, TokenError> {
        // The serde_json message can quote values from the document, so only the position is
        // reported.
        let document: JwkSet = serde_json::from_slice(json).map_err(|error| {
            TokenError::InvalidKey(format!(
                "not a JWKS document with a keys array (JSON error at line {}, column {})",
                error.line(),
                error.column()
            ))
        })?;

        let mut keys = Vec::with_capacity(document.keys.len());
        for (index, jwk) in document.keys.iter().enumerate() {
            if jwk
                .public_key_use
                .as_deref()
                .is_some_and(|usage| usage != "sig")
            {
                continue;
            }
            let key = verifying_key_from_jwk(jwk).map_err(|reason| {
                TokenError::InvalidKey(format!("JWKS key {}: {reason}", index + 1))
            })?;
            keys.push(key);
        }

        if keys.is_empty() {
            return Err(TokenError::InvalidKey(
                "the JWKS document contains no signing key".to_string(),
            ));
        }
        Ok(VerifyingKeys { keys })
    }

    /// Adds an Ed25519 public key (32 raw bytes) under a key id, for the built-in issuer.
    pub fn add_ed25519(&mut self, kid: &str, public_key: &[u8]) -> Result<(), TokenError> {
        if public_key.len() != 32 {
            return Err(TokenError::InvalidKey(format!(
                "an Ed25519 public key has 32 bytes, not {}",
                public_key.len()
            )));
        }
        self.keys.push(VerifyingKey {
            kid: Some(kid.to_string()),
            algorithm: None,
            key: PublicKey::Ed25519(public_key.to_vec()),
        });
        Ok(())
    }

    /// Adds every key of `other`.
    pub fn extend(&mut self, other: VerifyingKeys) {
        self.keys.extend(other.keys);
    }

    /// Returns the number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Returns true when the set has no key, so that no token verifies.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn verify_signature(
        &self,
        algorithm: Algorithm,
        kid: Option<&str>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), TokenError> {
        let kid_is_known =
            kid.is_some_and(|kid| self.keys.iter().any(|key| key.kid.as_deref() == Some(kid)));
        let mut candidates = self
            .keys
            .iter()
            .filter(|key| !kid_is_known || key.kid.as_deref() == kid)
            .filter(|key| key.fits(algorithm))
            .peekable();

        if candidates.peek().is_none() {
            return Err(TokenError::UnknownKey);
        }
        if candidates.any(|key| key.key.verifies(algorithm, message, signature)) {
            Ok(())
        } else {
            Err(TokenError::BadSignature)
        }
    }
}

/// Extracts a supported public key from a DER SubjectPublicKeyInfo.
fn public_key_from_spki(der: &[u8]) -> Result<PublicKey, String> {
    let spki = SubjectPublicKeyInfoRef::from_der(der)
        .map_err(|_| "the SubjectPublicKeyInfo is not valid DER".to_string())?;
    let key_bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| "the public key bit string is not a whole number of bytes".to_string())?;

    let algorithm = spki.algorithm.oid;
    if algorithm == OID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters_oid()
            .map_err(|_| "the EC key does not name its curve".to_string())?;
        if curve == OID_P256 {
            ec_point(key_bytes, 32).map(PublicKey::EcP256)
        } else if curve == OID_P384 {
            ec_point(key_bytes, 48).map(PublicKey::EcP384)
        } else {
            Err(format!(
                "the EC curve {curve} is not supported (use P-256 or P-384)"
            ))
        }
    } else if algorithm == OID_RSA_ENCRYPTION {
        rsa_key_from_pkcs1(key_bytes)
    } else if algorithm == OID_ED25519 {
        ed25519_key(key_bytes)
    } else {
        Err(format!(
            "the key algorithm {algorithm} is not supported (use ECDSA, RSA or Ed25519)"
        ))
    }
}

/// Extracts the public key of an X.509 certificate in DER.
fn public_key_from_certificate(der: &[u8]) -> Result<PublicKey, String> {
    let certificate = rustls_pki_types::CertificateDer::from(der);
    let anchor = webpki::anchor_from_trusted_cert(&certificate)
        .map_err(|error| format!("not a valid X.509 certificate ({error})"))?;
    public_key_from_spki(webpki::spki_for_anchor(&anchor).as_ref())
}

/// Parses a DER RSAPublicKey (PKCS #1): `SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn rsa_key_from_pkcs1(der: &[u8]) -> Result<PublicKey, String> {
    let invalid = |_| "the RSA public key is not valid DER".to_string();
    let mut reader = SliceReader::new(der).map_err(invalid)?;
    let (n, e) = reader
        .sequence(|fields| {
            let n = UintRef::decode(fields)?;
            let e = UintRef::decode(fields)?;
            Ok::<_, pkcs8::der::Error>((n.as_bytes(), e.as_bytes()))
        })
        .map_err(invalid)?;
    reader.finish().map_err(invalid)?;
    rsa_key(n, e)
}

/// Checks RSA components against the limits of ring's PKCS #1 v1.5 verifiers, so that an
/// unusable key is rejected when it is loaded and not on every verification.
fn rsa_key(n: &[u8], e: &[u8]) -> Result<PublicKey, String> {
    let n = strip_leading_zeros(n);
    let e = strip_leading_zeros(e);

    let n_bits = match n.first() {
        Some(first) => (n.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
        None => 0,
    };
    if n_bits < RSA_MIN_BITS {
        return Err(format!(
            "the RSA modulus has {n_bits} bits, but at least {RSA_MIN_BITS} are required"
        ));
    }
    if n_bits > RSA_MAX_BITS {
        return Err(format!(
            "the RSA modulus has {n_bits} bits, but at most {RSA_MAX_BITS} are supported"
        ));
    }
    if n.last().is_some_and(|last| last % 2 == 0) {
        return Err("the RSA modulus is even".to_string());
    }

    if e.len() > 5 {
        return Err(format!(
            "the RSA public exponent is larger than {RSA_MAX_EXPONENT}"
        ));
    }
    let exponent = e
        .iter()
        .fold(0u64, |value, byte| (value << 8) | u64::from(*byte));
    if !(3..=RSA_MAX_EXPONENT).contains(&exponent) || exponent % 2 == 0 {
        return Err(format!(
            "the RSA public exponent {exponent} is not an odd number from 3 to {RSA_MAX_EXPONENT}"
        ));
    }

    Ok(PublicKey::Rsa {
        n: n.to_vec(),
        e: e.to_vec(),
    })
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// Checks an uncompressed SEC 1 point (`04 || x || y`) with coordinates of `coordinate_length`
/// bytes. ring checks that the point is on the curve when it verifies a signature.
fn ec_point(bytes: &[u8], coordinate_length: usize) -> Result<Vec<u8>, String> {
    if bytes.len() != 1 + 2 * coordinate_length || bytes.first() != Some(&0x04) {
        return Err(format!(
            "the EC public key is not an uncompressed point of {} bytes",
            1 + 2 * coordinate_length
        ));
    }
    Ok(bytes.to_vec())
}

fn ed25519_key(bytes: &[u8]) -> Result<PublicKey, String> {
    if bytes.len() != 32 {
        return Err(format!(
            "the Ed25519 public key has {} bytes instead of 32",
            bytes.len()
        ));
    }
    Ok(PublicKey::Ed25519(bytes.to_vec()))
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

/// The JWK members (RFC 7517, RFC 7518, RFC 8037) that key parsing reads.
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    public_key_use: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    /// Private exponent or scalar. Its presence marks a private key.
    #[serde(default)]
    d: Option<IgnoredAny>,
    /// Symmetric key value.
    #[serde(default)]
    k: Option<IgnoredAny>,
}

fn verifying_key_from_jwk(jwk: &Jwk) -> Result<VerifyingKey, String> {
    if jwk.d.is_some() || jwk.k.is_some() {
        return Err(
            "it contains private or symmetric key material, but only public keys belong in a JWKS for verification"
                .to_string(),
        );
    }

    let curve = jwk.crv.as_deref();
    let key = match (jwk.kty.as_str(), curve) {
        ("EC", Some("P-256")) => ec_point(&jwk_point(jwk, 32)?, 32).map(PublicKey::EcP256)?,
        ("EC", Some("P-384")) => ec_point(&jwk_point(jwk, 48)?, 48).map(PublicKey::EcP384)?,
        ("EC", _) => {
            return Err(format!(
                "the EC curve {} is not supported (use P-256 or P-384)",
                quoted_name(curve)
            ))
        }
        ("RSA", _) => rsa_key(&jwk_member(&jwk.n, "n")?, &jwk_member(&jwk.e, "e")?)?,
        ("OKP", Some("Ed25519")) => ed25519_key(&jwk_member(&jwk.x, "x")?)?,
        ("OKP", _) => {
            return Err(format!(
                "the OKP curve {} is not supported (use Ed25519)",
                quoted_name(curve)
            ))
        }
        (kty, _) => {
            return Err(format!(
                "the key type {} is not supported (use EC, RSA or OKP)",
                quoted_name(Some(kty))
            ))
        }
    };

    let algorithm = match jwk.alg.as_deref() {
        None => None,
        Some(name) => {
            let algorithm = Algorithm::from_name(name).map_err(|_| {
                format!("the algorithm {} is not supported", quoted_name(Some(name)))
            })?;
            if !algorithm.fits(&key) {
                return Err(format!(
                    "the algorithm {name} does not fit the key type {}",
                    jwk.kty
                ));
            }
            Some(algorithm)
        }
    };

    Ok(VerifyingKey {
        kid: jwk.kid.clone(),
        algorithm,
        key,
    })
}

fn jwk_member(value: &Option<String>, member: &str) -> Result<Vec<u8>, String> {
    let text = value
        .as_deref()
        .ok_or_else(|| format!("the member {member} is missing"))?;
    decode_base64url(text).ok_or_else(|| format!("the member {member} is not unpadded base64url"))
}

/// Builds an uncompressed point from the `x` and `y` members.
fn jwk_point(jwk: &Jwk, coordinate_length: usize) -> Result<Vec<u8>, String> {
    let x = jwk_member(&jwk.x, "x")?;
    let y = jwk_member(&jwk.y, "y")?;
    if x.len() != coordinate_length || y.len() != coordinate_length {
        return Err(format!(
            "the coordinates x and y must have {coordinate_length} bytes each"
        ));
    }

    let mut point = Vec::with_capacity(1 + 2 * coordinate_length);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

/// Formats a name from a key file for an error message, quoting it only when it is short and
/// made of name characters.
fn quoted_name(value: Option<&str>) -> String {
    match value {
        None => "(missing)".to_string(),
        Some(text)
            if text.len() <= 32
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            format!("{text:?}")
        }
        Some(_) => "(unrecognized value)".to_string(),
    }
}

/// The built-in issuer's Ed25519 signing key (JWS algorithm EdDSA).
pub struct TokenSigner {
    key_pair: Ed25519KeyPair,
    key_id: String,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TokenSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// Generates a new key and returns the signer and its PKCS #8 v2 document for storage.
    ///
    /// The document contains the private key.
    pub fn generate() -> Result<(TokenSigner, Vec<u8>), TokenError> {
        let random = ring::rand::SystemRandom::new();
        let document =
            Ed25519KeyPair::generate_pkcs8(&random).map_err(|_| TokenError::KeyGeneration)?;
        let signer = TokenSigner::from_pkcs8(document.as_ref())?;
        Ok((signer, document.as_ref().to_vec()))
    }

    /// Loads a key from a PKCS #8 v2 document, as [`TokenSigner::generate`] returns.
    ///
    /// ring rejects PKCS #8 v1 documents because they lack the public key to check against.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<TokenSigner, TokenError> {
        let key_pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|rejected| {
            TokenError::InvalidKey(format!(
                "not an Ed25519 PKCS #8 v2 private key ({rejected})"
            ))
        })?;
        let key_id = key_id_for(key_pair.public_key().as_ref());
        Ok(TokenSigner { key_pair, key_id })
    }

    /// Returns the key id: the first 32 hex characters of the SHA-256 digest of the raw public
    /// key.
    pub fn key_id(&self) -> String {
        self.key_id.clone()
    }

    /// Returns the raw 32-byte public key.
    pub fn public_key(&self) -> Vec<u8> {
        self.key_pair.public_key().as_ref().to_vec()
    }

    /// Signs claims as a compact JWS with header `{"alg":"EdDSA","typ":"JWT","kid":<key id>}`.
    ///
    /// Fails with [`TokenError::TooLong`] when the token would be longer than
    /// [`MAX_TOKEN_LENGTH`], because [`verify`] would reject it.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        #[derive(Serialize)]
        struct SigningHeader<'a> {
            alg: &'a str,
            typ: &'a str,
            kid: &'a str,
        }

        let header = serde_json::to_vec(&SigningHeader {
            alg: "EdDSA",
            typ: "JWT",
            kid: &self.key_id,
        })
        .map_err(|_| TokenError::Signing)?;
        let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Signing)?;

        let mut token = String::new();
        URL_SAFE_NO_PAD.encode_string(header, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let signature = self.key_pair.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);

        if token.len() > MAX_TOKEN_LENGTH {
            return Err(TokenError::TooLong);
        }
        Ok(token)
    }
}

fn key_id_for(public_key: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public_key);
    let mut key_id = hex::encode(digest.as_ref());
    key_id.truncate(KEY_ID_HEX_LENGTH);
    key_id
}

#[cfg(test)]
mod tests;
