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
    // The last character of a 64-byte signature carries two bits: A, Q, g or w. Swapping it for
    // another of those changes the signature and keeps the encoding valid.
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'Q' { 'g' } else { 'Q' });

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
