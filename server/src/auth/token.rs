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
                let shown = REJECTED_ALGORITHMS
                    .iter()
                    .find(|rejected| **rejected == other)
                    .map_or("an unrecognized name", |rejected| rejected);
                Err(TokenError::UnsupportedAlgorithm(shown.to_string()))
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
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, RsaKeyPair};
    use serde_json::json;
    use std::process::Command;

    const NOW: i64 = 1_700_000_000;
    const ISSUER: &str = "https://auth.example/token";
    const AUDIENCE: &str = "registry.example";

    fn validation() -> Validation {
        Validation {
            issuer: ISSUER.to_string(),
            audience: AUDIENCE.to_string(),
            leeway_seconds: 30,
        }
    }

    fn claims() -> Claims {
        Claims {
            iss: ISSUER.to_string(),
            sub: "alice".to_string(),
            aud: Audience::single(AUDIENCE),
            exp: NOW + 300,
            nbf: Some(NOW - 10),
            iat: Some(NOW - 10),
            jti: Some("token-1".to_string()),
            access: vec![Access {
                kind: "repository".to_string(),
                name: "registry.example/team-a/*".to_string(),
                actions: vec!["pull".to_string()],
            }],
        }
    }

    fn encode(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Builds a compact JWS from a header and a payload, signing with `sign`.
    fn compact_jws(
        header: &serde_json::Value,
        payload: &serde_json::Value,
        sign: impl Fn(&[u8]) -> Vec<u8>,
    ) -> String {
        let signing_input = format!(
            "{}.{}",
            encode(header.to_string().as_bytes()),
            encode(payload.to_string().as_bytes())
        );
        let signature = sign(signing_input.as_bytes());
        format!("{signing_input}.{}", encode(&signature))
    }

    fn claims_json() -> serde_json::Value {
        serde_json::to_value(claims()).unwrap()
    }

    /// Generates a signer and a key set that contains its public key.
    fn signer_and_keys() -> (TokenSigner, VerifyingKeys) {
        let (signer, _) = TokenSigner::generate().unwrap();
        let mut keys = VerifyingKeys::new();
        keys.add_ed25519(&signer.key_id(), &signer.public_key())
            .unwrap();
        (signer, keys)
    }

    /// A key pair written by the openssl command-line tool.
    struct OpensslKey {
        _dir: tempfile::TempDir,
        pkcs8_der: Vec<u8>,
        public_key_pem: String,
        certificate_pem: String,
    }

    fn run_openssl(dir: &Path, args: &[&str]) {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl command runs");
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn openssl_key(genpkey_args: &[&str]) -> OpensslKey {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();

        let mut args = vec!["genpkey"];
        args.extend_from_slice(genpkey_args);
        args.extend_from_slice(&["-out", "key.pem"]);
        run_openssl(path, &args);
        run_openssl(
            path,
            &[
                "pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-outform", "DER", "-out",
                "key.p8",
            ],
        );
        run_openssl(
            path,
            &["pkey", "-in", "key.pem", "-pubout", "-out", "public.pem"],
        );
        run_openssl(
            path,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "key.pem",
                "-subj",
                "/CN=signet-test",
                "-days",
                "1",
                "-out",
                "certificate.pem",
            ],
        );

        OpensslKey {
            pkcs8_der: std::fs::read(path.join("key.p8")).unwrap(),
            public_key_pem: std::fs::read_to_string(path.join("public.pem")).unwrap(),
            certificate_pem: std::fs::read_to_string(path.join("certificate.pem")).unwrap(),
            _dir: dir,
        }
    }

    fn openssl_p256() -> (OpensslKey, EcdsaKeyPair) {
        let key = openssl_key(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.pkcs8_der,
            &SystemRandom::new(),
        )
        .unwrap();
        (key, pair)
    }

    fn openssl_rsa(bits: &str) -> OpensslKey {
        let option = format!("rsa_keygen_bits:{bits}");
        openssl_key(&["-algorithm", "RSA", "-pkeyopt", &option])
    }

    fn es256_token(pair: &EcdsaKeyPair, kid: Option<&str>) -> String {
        let mut header = json!({"alg": "ES256", "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        compact_jws(&header, &claims_json(), |message| {
            pair.sign(&SystemRandom::new(), message)
                .unwrap()
                .as_ref()
                .to_vec()
        })
    }

    fn rs256_token(pair: &RsaKeyPair) -> String {
        compact_jws(
            &json!({"alg": "RS256", "typ": "JWT"}),
            &claims_json(),
            |message| {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .unwrap();
                signature
            },
        )
    }

    fn ec_jwk(pair: &EcdsaKeyPair, kid: &str) -> serde_json::Value {
        let point = pair.public_key().as_ref();
        json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": encode(&point[1..33]), "y": encode(&point[33..65]),
        })
    }

    // Signing and verifying with the built-in issuer.

    #[test]
    fn signer_token_verifies() {
        let (signer, keys) = signer_and_keys();
        let token = signer.sign(&claims()).unwrap();

        let verified = verify(&token, &keys, &validation(), NOW).unwrap();
        assert_eq!(verified, claims());
    }

    #[test]
    fn signer_header_has_eddsa_and_key_id() {
        let (signer, _) = signer_and_keys();
        let token = signer.sign(&claims()).unwrap();
        let header_part = token.split('.').next().unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_part).unwrap()).unwrap();

        assert_eq!(
            header,
            json!({"alg": "EdDSA", "typ": "JWT", "kid": signer.key_id()})
        );
    }

    #[test]
    fn signer_reloads_from_pkcs8() {
        let (signer, pkcs8) = TokenSigner::generate().unwrap();
        let reloaded = TokenSigner::from_pkcs8(&pkcs8).unwrap();

        assert_eq!(reloaded.key_id(), signer.key_id());
        assert_eq!(reloaded.public_key(), signer.public_key());
    }

    #[test]
    fn signer_rejects_garbage_pkcs8() {
        let result = TokenSigner::from_pkcs8(b"not a key");
        assert!(
            matches!(result, Err(TokenError::InvalidKey(_))),
            "{result:?}"
        );
    }

    #[test]
    fn key_id_is_sha256_prefix() {
        let (signer, _) = signer_and_keys();
        let digest = ring::digest::digest(&ring::digest::SHA256, &signer.public_key());
        let expected = hex::encode(digest.as_ref())[..32].to_string();

        assert_eq!(signer.key_id(), expected);
    }

    #[test]
    fn sign_rejects_oversized_claims() {
        let (signer, _) = signer_and_keys();
        let mut large = claims();
        large.sub = "a".repeat(MAX_TOKEN_LENGTH);

        assert!(matches!(signer.sign(&large), Err(TokenError::TooLong)));
    }

    // Tokens from openssl-generated keys.

    #[test]
    fn es256_verifies_with_public_key_pem() {
        let (key, pair) = openssl_p256();
        let keys = VerifyingKeys::from_pem(&key.public_key_pem).unwrap();

        let verified = verify(&es256_token(&pair, None), &keys, &validation(), NOW).unwrap();
        assert_eq!(verified, claims());
    }

    #[test]
    fn es256_verifies_with_certificate_pem() {
        let (key, pair) = openssl_p256();
        let keys = VerifyingKeys::from_pem(&key.certificate_pem).unwrap();

        let verified = verify(&es256_token(&pair, None), &keys, &validation(), NOW).unwrap();
        assert_eq!(verified, claims());
    }

    #[test]
    fn es256_verifies_with_jwks() {
        let (_key, pair) = openssl_p256();
        let jwks = json!({"keys": [ec_jwk(&pair, "ec-1")]}).to_string();
        let keys = VerifyingKeys::from_jwks(jwks.as_bytes()).unwrap();

        let token = es256_token(&pair, Some("ec-1"));
        assert_eq!(verify(&token, &keys, &validation(), NOW).unwrap(), claims());
    }

    #[test]
    fn rs256_verifies_with_pem_certificate_and_jwks() {
        let key = openssl_rsa("2048");
        let pair = RsaKeyPair::from_pkcs8(&key.pkcs8_der).unwrap();
        let token = rs256_token(&pair);

        let from_public_key = VerifyingKeys::from_pem(&key.public_key_pem).unwrap();
        assert_eq!(
            verify(&token, &from_public_key, &validation(), NOW).unwrap(),
            claims()
        );

        let from_certificate = VerifyingKeys::from_pem(&key.certificate_pem).unwrap();
        assert_eq!(
            verify(&token, &from_certificate, &validation(), NOW).unwrap(),
            claims()
        );

        let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
        let jwks = json!({"keys": [{
            "kty": "RSA", "kid": "rsa-1", "n": encode(&public.n), "e": encode(&public.e),
        }]});
        let from_jwks = VerifyingKeys::from_jwks(jwks.to_string().as_bytes()).unwrap();
        assert_eq!(
            verify(&token, &from_jwks, &validation(), NOW).unwrap(),
            claims()
        );
    }

    #[test]
    fn ed25519_verifies_with_public_key_pem() {
        let key = openssl_key(&["-algorithm", "ED25519"]);
        // openssl writes PKCS #8 v1, which only the unchecked ring constructor reads.
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&key.pkcs8_der).unwrap();
        let token = compact_jws(&json!({"alg": "EdDSA"}), &claims_json(), |message| {
            pair.sign(message).as_ref().to_vec()
        });
        let keys = VerifyingKeys::from_pem(&key.public_key_pem).unwrap();

        assert_eq!(verify(&token, &keys, &validation(), NOW).unwrap(), claims());
    }

    #[test]
    fn from_file_reads_pem_and_jwks() {
        let (key, pair) = openssl_p256();
        let dir = tempfile::tempdir().unwrap();
        let pem_path = dir.path().join("keys.pem");
        std::fs::write(&pem_path, &key.public_key_pem).unwrap();
        let jwks_path = dir.path().join("keys.json");
        let jwks = format!("\n  {}", json!({"keys": [ec_jwk(&pair, "ec-1")]}));
        std::fs::write(&jwks_path, jwks).unwrap();
        let token = es256_token(&pair, None);

        let from_pem = VerifyingKeys::from_file(&pem_path).unwrap();
        assert!(verify(&token, &from_pem, &validation(), NOW).is_ok());
        let from_jwks = VerifyingKeys::from_file(&jwks_path).unwrap();
        assert!(verify(&token, &from_jwks, &validation(), NOW).is_ok());
    }

    #[test]
    fn from_file_reports_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "no key here").unwrap();

        let missing_error = VerifyingKeys::from_file(&missing).unwrap_err();
        assert!(
            matches!(missing_error, TokenError::ReadKeyFile { .. }),
            "{missing_error:?}"
        );
        assert!(missing_error.to_string().contains("missing.pem"));
        let garbage_error = VerifyingKeys::from_file(&garbage).unwrap_err();
        assert!(
            matches!(garbage_error, TokenError::InvalidKeyFile { .. }),
            "{garbage_error:?}"
        );
        assert!(garbage_error.to_string().contains("garbage.pem"));
    }

    #[test]
    fn from_file_rejects_oversized_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.pem");
        std::fs::write(&path, vec![b'a'; MAX_KEY_FILE_SIZE as usize + 1]).unwrap();

        let error = VerifyingKeys::from_file(&path).unwrap_err();
        assert!(
            matches!(error, TokenError::InvalidKeyFile { .. }),
            "{error:?}"
        );
    }

    // Rejected keys.

    #[test]
    fn small_rsa_key_rejected() {
        let key = openssl_rsa("1024");
        let error = VerifyingKeys::from_pem(&key.public_key_pem).unwrap_err();

        assert!(matches!(error, TokenError::InvalidKey(_)), "{error:?}");
        assert!(error.to_string().contains("1024 bits"), "{error}");
    }

    #[test]
    fn private_key_pem_rejected() {
        let (key, _) = openssl_p256();
        let dir = tempfile::tempdir().unwrap();
        run_openssl(
            dir.path(),
            &["genpkey", "-algorithm", "ED25519", "-out", "private.pem"],
        );
        let private_pem = std::fs::read_to_string(dir.path().join("private.pem")).unwrap();
        let body = private_pem.lines().nth(1).unwrap();

        let error = VerifyingKeys::from_pem(&private_pem).unwrap_err();
        assert!(matches!(error, TokenError::InvalidKey(_)), "{error:?}");
        assert!(!error.to_string().contains(body));
        assert!(!format!("{error:?}").contains(body));
        assert!(VerifyingKeys::from_pem(&key.public_key_pem).is_ok());
    }

    #[test]
    fn empty_pem_rejected() {
        let error = VerifyingKeys::from_pem("").unwrap_err();
        assert!(matches!(error, TokenError::InvalidKey(_)), "{error:?}");
    }

    #[test]
    fn jwks_private_member_rejected() {
        let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": encode(&[7; 32]),
            "d": encode(&[9; 32])}]});
        let error = VerifyingKeys::from_jwks(jwks.to_string().as_bytes()).unwrap_err();

        assert!(matches!(error, TokenError::InvalidKey(_)), "{error:?}");
        assert!(!error.to_string().contains(&encode(&[9; 32])));
    }

    #[test]
    fn jwks_symmetric_key_rejected() {
        let jwks = json!({"keys": [{"kty": "oct", "k": encode(b"secret")}]});
        let error = VerifyingKeys::from_jwks(jwks.to_string().as_bytes()).unwrap_err();
        assert!(matches!(error, TokenError::InvalidKey(_)), "{error:?}");
    }

    #[test]
    fn jwks_skips_encryption_keys() {
        let only_encryption = json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "use": "enc", "x": encode(&[7; 32])},
        ]});
        let mixed = json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "use": "enc", "x": encode(&[7; 32])},
            {"kty": "OKP", "crv": "Ed25519", "x": encode(&[8; 32])},
        ]});

        assert!(VerifyingKeys::from_jwks(only_encryption.to_string().as_bytes()).is_err());
        let keys = VerifyingKeys::from_jwks(mixed.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
    }

    #[test]
    fn jwks_rejects_padded_coordinates() {
        let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519",
            "x": base64::engine::general_purpose::URL_SAFE.encode([7; 32])}]});
        assert!(VerifyingKeys::from_jwks(jwks.to_string().as_bytes()).is_err());
    }

    #[test]
    fn jwks_alg_restricts_key() {
        let (_key, pair) = openssl_p256();
        let mut jwk = ec_jwk(&pair, "ec-1");
        jwk["alg"] = json!("RS256");

        let error = VerifyingKeys::from_jwks(json!({"keys": [jwk]}).to_string().as_bytes());
        assert!(matches!(error, Err(TokenError::InvalidKey(_))), "{error:?}");
    }

    // Signature failures.

    #[test]
    fn wrong_key_gives_bad_signature() {
        let (signer, _) = signer_and_keys();
        let (_, other_keys) = signer_and_keys();
        let token = signer.sign(&claims()).unwrap();

        let result = verify(&token, &other_keys, &validation(), NOW);
        assert!(
            matches!(result, Err(TokenError::BadSignature)),
            "{result:?}"
        );
    }

    #[test]
    fn no_fitting_key_gives_unknown_key() {
        let (signer, _) = signer_and_keys();
        let (key, _) = openssl_p256();
        let ec_keys = VerifyingKeys::from_pem(&key.public_key_pem).unwrap();
        let token = signer.sign(&claims()).unwrap();

        assert!(matches!(
            verify(&token, &ec_keys, &validation(), NOW),
            Err(TokenError::UnknownKey)
        ));
        assert!(matches!(
            verify(&token, &VerifyingKeys::new(), &validation(), NOW),
            Err(TokenError::UnknownKey)
        ));
    }

    #[test]
    fn known_kid_limits_keys_tried() {
        let (signer, mut keys) = signer_and_keys();
        let (other, _) = signer_and_keys();
        // The token's kid names `other`, but its signature is by `signer`.
        keys.add_ed25519(&other.key_id(), &other.public_key())
            .unwrap();
        let token = compact_jws(
            &json!({"alg": "EdDSA", "kid": other.key_id()}),
            &claims_json(),
            |message| signer.key_pair.sign(message).as_ref().to_vec(),
        );

        let result = verify(&token, &keys, &validation(), NOW);
        assert!(
            matches!(result, Err(TokenError::BadSignature)),
            "{result:?}"
        );
    }

    #[test]
    fn unknown_kid_tries_every_key() {
        let (signer, keys) = signer_and_keys();
        let token = compact_jws(
            &json!({"alg": "EdDSA", "kid": "not-configured"}),
            &claims_json(),
            |message| signer.key_pair.sign(message).as_ref().to_vec(),
        );

        assert!(verify(&token, &keys, &validation(), NOW).is_ok());
    }

    #[test]
    fn tampered_payload_rejected() {
        let (signer, keys) = signer_and_keys();
        let token = signer.sign(&claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut elevated = claims_json();
        elevated["access"][0]["actions"] = json!(["*"]);
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            encode(elevated.to_string().as_bytes()),
            parts[2]
        );

        let result = verify(&forged, &keys, &validation(), NOW);
        assert!(
            matches!(result, Err(TokenError::BadSignature)),
            "{result:?}"
        );
    }

    #[test]
    fn every_changed_character_rejected() {
        let (signer, keys) = signer_and_keys();
        let token = signer.sign(&claims()).unwrap();

        for (index, original) in token.char_indices() {
            let replacement = if original == 'A' { 'B' } else { 'A' };
            let mut changed = token.clone();
            changed.replace_range(index..index + 1, &replacement.to_string());
            assert!(
                verify(&changed, &keys, &validation(), NOW).is_err(),
                "changing character {index} left the token valid"
            );
        }
    }

    // Algorithms.

    #[test]
    fn alg_none_rejected() {
        let (_, keys) = signer_and_keys();
        let token = format!(
            "{}.{}.",
            encode(json!({"alg": "none"}).to_string().as_bytes()),
            encode(claims_json().to_string().as_bytes())
        );

        let result = verify(&token, &keys, &validation(), NOW);
        assert!(
            matches!(&result, Err(TokenError::UnsupportedAlgorithm(name)) if name == "none"),
            "{result:?}"
        );
    }

    #[test]
    fn hs256_confusion_rejected() {
        let (signer, keys) = signer_and_keys();
        let hmac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &signer.public_key());
        let token = compact_jws(&json!({"alg": "HS256"}), &claims_json(), |message| {
            ring::hmac::sign(&hmac_key, message).as_ref().to_vec()
        });

        let result = verify(&token, &keys, &validation(), NOW);
        assert!(
            matches!(&result, Err(TokenError::UnsupportedAlgorithm(name)) if name == "HS256"),
            "{result:?}"
        );
    }

    #[test]
    fn unregistered_alg_not_echoed() {
        let (_, keys) = signer_and_keys();
        let token = compact_jws(&json!({"alg": "XYZ-secret"}), &claims_json(), |_| vec![1]);

        let error = verify(&token, &keys, &validation(), NOW).unwrap_err();
        assert!(
            matches!(error, TokenError::UnsupportedAlgorithm(_)),
            "{error:?}"
        );
        assert!(!error.to_string().contains("XYZ-secret"));
    }

    #[test]
    fn crit_header_rejected() {
        let (signer, keys) = signer_and_keys();
        let token = compact_jws(
            &json!({"alg": "EdDSA", "crit": ["exp"], "exp": 1}),
            &claims_json(),
            |message| signer.key_pair.sign(message).as_ref().to_vec(),
        );

        let result = verify(&token, &keys, &validation(), NOW);
        assert!(
            matches!(result, Err(TokenError::Malformed(_))),
            "{result:?}"
        );
    }

    // Claim checks.

    fn verify_claims(claims: &Claims, now: i64) -> Result<Claims, TokenError> {
        let (signer, keys) = signer_and_keys();
        verify(&signer.sign(claims).unwrap(), &keys, &validation(), now)
    }

    #[test]
    fn expired_token_rejected() {
        let mut expired = claims();
        expired.exp = NOW - 30;
        let result = verify_claims(&expired, NOW);
        assert!(matches!(result, Err(TokenError::Expired)), "{result:?}");

        let mut within_leeway = claims();
        within_leeway.exp = NOW - 29;
        assert!(verify_claims(&within_leeway, NOW).is_ok());
    }

    #[test]
    fn future_nbf_rejected() {
        let mut future = claims();
        future.nbf = Some(NOW + 31);
        let result = verify_claims(&future, NOW);
        assert!(matches!(result, Err(TokenError::NotYetValid)), "{result:?}");

        let mut within_leeway = claims();
        within_leeway.nbf = Some(NOW + 30);
        assert!(verify_claims(&within_leeway, NOW).is_ok());
    }

    #[test]
    fn negative_leeway_counts_as_zero() {
        let (signer, keys) = signer_and_keys();
        let token = signer.sign(&claims()).unwrap();
        let strict = Validation {
            leeway_seconds: -1000,
            ..validation()
        };

        assert!(verify(&token, &keys, &strict, NOW).is_ok());
    }

    #[test]
    fn wrong_issuer_rejected() {
        let mut other = claims();
        other.iss = "https://other.example".to_string();
        let result = verify_claims(&other, NOW);
        assert!(
            matches!(result, Err(TokenError::WrongIssuer { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn wrong_audience_rejected() {
        let mut single = claims();
        single.aud = Audience::single("other.example");
        let result = verify_claims(&single, NOW);
        assert!(
            matches!(result, Err(TokenError::WrongAudience { .. })),
            "{result:?}"
        );

        let mut list = claims();
        list.aud = Audience::from_list(vec!["a.example".to_string(), "b.example".to_string()]);
        let result = verify_claims(&list, NOW);
        assert!(
            matches!(result, Err(TokenError::WrongAudience { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn audience_list_containing_expected_accepted() {
        let mut list = claims();
        list.aud = Audience::from_list(vec!["a.example".to_string(), AUDIENCE.to_string()]);
        assert!(verify_claims(&list, NOW).is_ok());
    }

    #[test]
    fn audience_serializes_single_as_string() {
        let single = serde_json::to_value(Audience::single("a")).unwrap();
        let list =
            serde_json::to_value(Audience::from_list(vec!["a".to_string(), "b".to_string()]))
                .unwrap();

        assert_eq!(single, json!("a"));
        assert_eq!(list, json!(["a", "b"]));
        assert_eq!(
            serde_json::from_value::<Audience>(json!(["a"])).unwrap(),
            Audience::single("a")
        );
    }

    #[test]
    fn null_access_lists_read_as_empty() {
        let mut value = claims_json();
        value["access"] = json!(null);
        assert!(serde_json::from_value::<Claims>(value.clone())
            .unwrap()
            .access
            .is_empty());

        value["access"] = json!([{"type": "repository", "name": "x/y", "actions": null}]);
        let parsed: Claims = serde_json::from_value(value).unwrap();
        assert!(parsed.access[0].actions.is_empty());
    }

    // Malformed input.

    #[test]
    fn malformed_tokens_rejected() {
        let (signer, keys) = signer_and_keys();
        let token = signer.sign(&claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let header = parts[0];
        let payload = parts[1];
        let signature = parts[2];
        let padded_signature = base64::engine::general_purpose::URL_SAFE
            .encode(URL_SAFE_NO_PAD.decode(signature).unwrap());
        let standard_alphabet = token.replace('-', "+").replace('_', "/");

        let cases = [
            ("empty", String::new()),
            ("one dot", "a.b".to_string()),
            ("four parts", format!("{token}.x")),
            ("bad base64 header", format!("!!!.{payload}.{signature}")),
            (
                "padded signature",
                format!("{header}.{payload}.{padded_signature}"),
            ),
            (
                "header not JSON",
                format!("{}.{payload}.{signature}", encode(b"not json")),
            ),
            (
                "header without alg",
                format!("{}.{payload}.{signature}", encode(b"{}")),
            ),
            (
                "payload not JSON",
                format!("{header}.{}.{signature}", encode(b"[1,2")),
            ),
            ("whitespace", format!(" {token}")),
            ("non-ASCII", format!("{header}.{payload}é.{signature}")),
            ("only dots", "..".to_string()),
        ];
        for (name, input) in &cases {
            assert!(
                verify(input, &keys, &validation(), NOW).is_err(),
                "case {name} verified"
            );
        }
        if standard_alphabet != token {
            assert!(verify(&standard_alphabet, &keys, &validation(), NOW).is_err());
        }
    }

    #[test]
    fn huge_token_rejected() {
        let (_, keys) = signer_and_keys();
        let huge = "a".repeat(MAX_TOKEN_LENGTH + 1);

        let result = verify(&huge, &keys, &validation(), NOW);
        assert!(matches!(result, Err(TokenError::TooLong)), "{result:?}");
    }

    #[test]
    fn claims_with_wrong_types_rejected() {
        let (signer, keys) = signer_and_keys();
        let mut value = claims_json();
        value["exp"] = json!("tomorrow");
        let token = compact_jws(&json!({"alg": "EdDSA"}), &value, |message| {
            signer.key_pair.sign(message).as_ref().to_vec()
        });

        let result = verify(&token, &keys, &validation(), NOW);
        assert!(
            matches!(result, Err(TokenError::Malformed(_))),
            "{result:?}"
        );
        assert!(!result.unwrap_err().to_string().contains("tomorrow"));
    }

    // Secrets stay out of messages.

    #[test]
    fn errors_never_contain_token_or_key() {
        let (signer, pkcs8) = TokenSigner::generate().unwrap();
        let (_, other_keys) = signer_and_keys();
        let mut keys = VerifyingKeys::new();
        keys.add_ed25519(&signer.key_id(), &signer.public_key())
            .unwrap();
        let token = signer.sign(&claims()).unwrap();
        let mut wrong_issuer = claims();
        wrong_issuer.iss = "other".to_string();
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push('Q');

        let errors = [
            verify(&token, &other_keys, &validation(), NOW).unwrap_err(),
            verify(&token, &keys, &validation(), NOW + 100_000).unwrap_err(),
            verify(
                &signer.sign(&wrong_issuer).unwrap(),
                &keys,
                &validation(),
                NOW,
            )
            .unwrap_err(),
            verify(&tampered, &keys, &validation(), NOW).unwrap_err(),
            verify(&format!("{token}.x"), &keys, &validation(), NOW).unwrap_err(),
            TokenSigner::from_pkcs8(&pkcs8[..pkcs8.len() - 1]).unwrap_err(),
        ];
        let secret_texts = [
            token.clone(),
            token.split('.').nth(1).unwrap().to_string(),
            token.split('.').nth(2).unwrap().to_string(),
            hex::encode(&pkcs8),
            URL_SAFE_NO_PAD.encode(&pkcs8),
        ];
        for error in &errors {
            let texts = [
                error.to_string(),
                format!("{error:?}"),
                format!("{error:#?}"),
            ];
            for text in &texts {
                for secret in &secret_texts {
                    assert!(!text.contains(secret.as_str()), "{text} reveals a secret");
                }
            }
        }
    }

    #[test]
    fn signer_debug_hides_private_key() {
        let (signer, pkcs8) = TokenSigner::generate().unwrap();
        // ring's PKCS #8 v2 document for Ed25519 has a 16-byte prefix and then the 32-byte seed.
        let seed = &pkcs8[16..48];
        let debug = format!("{signer:?}");
        let pretty = format!("{signer:#?}");

        assert!(debug.contains(&signer.key_id()));
        for text in [&debug, &pretty] {
            assert!(!text.contains(&hex::encode(seed)));
            assert!(!text.contains(&hex::encode(&pkcs8)));
            let seed_as_list = format!("{seed:?}");
            assert!(!text.contains(seed_as_list.trim_matches(|c| c == '[' || c == ']')));
        }
    }

    // Access checks.

    fn claims_with_access(entries: &[(&str, &str, &[&str])]) -> Claims {
        let mut claims = claims();
        claims.access = entries
            .iter()
            .map(|(kind, name, actions)| Access {
                kind: kind.to_string(),
                name: name.to_string(),
                actions: actions.iter().map(|action| action.to_string()).collect(),
            })
            .collect();
        claims
    }

    #[test]
    fn pull_only_cannot_push() {
        let claims = claims_with_access(&[("repository", "registry.example/app", &["pull"])]);

        assert!(claims.allows("registry.example/app", Action::Pull));
        assert!(!claims.allows("registry.example/app", Action::Push));
        assert!(!claims.allows("registry.example/app", Action::All));
    }

    #[test]
    fn push_does_not_imply_pull() {
        let claims = claims_with_access(&[("repository", "registry.example/app", &["push"])]);

        assert!(claims.allows("registry.example/app", Action::Push));
        assert!(!claims.allows("registry.example/app", Action::Pull));
        assert!(!claims.allows("registry.example/app", Action::All));
    }

    #[test]
    fn star_action_allows_all() {
        let claims = claims_with_access(&[("repository", "registry.example/app", &["*"])]);

        assert!(claims.allows("registry.example/app", Action::Pull));
        assert!(claims.allows("registry.example/app", Action::Push));
        assert!(claims.allows("registry.example/app", Action::All));
    }

    #[test]
    fn pull_and_push_do_not_allow_all() {
        let claims =
            claims_with_access(&[("repository", "registry.example/app", &["pull", "push"])]);
        assert!(!claims.allows("registry.example/app", Action::All));
    }

    #[test]
    fn allows_ignores_other_types_and_names() {
        let claims = claims_with_access(&[
            ("registry", "registry.example/app", &["*"]),
            ("repository", "registry.example/other", &["*"]),
        ]);
        assert!(!claims.allows("registry.example/app", Action::Pull));
    }

    #[test]
    fn is_admin_requires_admin_star_entry() {
        let admin = claims_with_access(&[("admin", "*", &["*"])]);
        let repository_star = claims_with_access(&[("repository", "*", &["*"])]);
        let admin_pull = claims_with_access(&[("admin", "*", &["pull"])]);
        let admin_named = claims_with_access(&[("admin", "registry.example", &["*"])]);

        assert!(admin.is_admin());
        assert!(!repository_star.is_admin());
        assert!(!admin_pull.is_admin());
        assert!(!admin_named.is_admin());
    }

    #[test]
    fn pattern_trailing_star_matches_one_or_more_segments() {
        let pattern = "registry.example/team-a/*";

        assert!(pattern_matches(pattern, "registry.example/team-a/app"));
        assert!(pattern_matches(pattern, "registry.example/team-a/x/app"));
        assert!(!pattern_matches(pattern, "registry.example/team-a"));
        assert!(!pattern_matches(pattern, "registry.example/team-ab/app"));
        assert!(!pattern_matches(pattern, "registry.example/team-b/app"));
        assert!(!pattern_matches(pattern, "registry.example/team-a/"));
    }

    #[test]
    fn pattern_middle_star_matches_one_segment() {
        let pattern = "registry.example/*/app";

        assert!(pattern_matches(pattern, "registry.example/team-a/app"));
        assert!(!pattern_matches(pattern, "registry.example/team-a/x/app"));
        assert!(!pattern_matches(pattern, "registry.example/app"));
        assert!(!pattern_matches(pattern, "registry.example//app"));
        assert!(!pattern_matches(pattern, "registry.example/team-a/other"));
    }

    #[test]
    fn pattern_star_inside_segment_is_literal() {
        assert!(!pattern_matches(
            "registry.example/team-*",
            "registry.example/team-a"
        ));
        assert!(pattern_matches(
            "registry.example/team-*",
            "registry.example/team-*"
        ));
        assert!(!pattern_matches(
            "registry.example/team-*/app",
            "registry.example/team-a/app"
        ));
    }

    #[test]
    fn pattern_without_star_matches_exactly() {
        assert!(pattern_matches(
            "registry.example/app",
            "registry.example/app"
        ));
        assert!(!pattern_matches(
            "registry.example/app",
            "registry.example/app/x"
        ));
        assert!(!pattern_matches("registry.example/app", "registry.example"));
        assert!(!pattern_matches(
            "registry.example/app",
            "Registry.example/app"
        ));
        assert!(!pattern_matches("", ""));
    }

    #[test]
    fn lone_star_matches_any_name() {
        assert!(pattern_matches("*", "registry.example/app"));
        assert!(pattern_matches("*", "app"));
        assert!(!pattern_matches("*", ""));
    }
}
