-- Who made each change: the subject of the token behind an upload or deletion, or
-- 'signet-server' for background re-signing. Older rows and servers without auth have NULL.
ALTER TABLE changefeed ADD COLUMN actor TEXT;

-- Signing keys of the built-in token issuer. Private keys are PKCS#8 encrypted with AES-256-GCM
-- under the key encryption key, like server_keys.
CREATE TABLE auth_keys (
    key_id            TEXT        PRIMARY KEY,
    public_key        BYTEA       NOT NULL,
    encrypted_private BYTEA       NOT NULL,
    nonce             BYTEA       NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Tokens issued by the built-in issuer. The token text itself is not stored; a token is valid
-- only while its row exists and is not revoked.
CREATE TABLE auth_tokens (
    id         TEXT        PRIMARY KEY,
    subject    TEXT        NOT NULL,
    access     TEXT        NOT NULL,
    key_id     TEXT        NOT NULL REFERENCES auth_keys (key_id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
