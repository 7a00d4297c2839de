-- Every version of every role of every repository, as the exact bytes received or signed.
CREATE TABLE tuf_files (
    id            BIGSERIAL PRIMARY KEY,
    gun           TEXT        NOT NULL,
    role          TEXT        NOT NULL,
    version       BIGINT      NOT NULL CHECK (version >= 1),
    sha256        TEXT        NOT NULL CHECK (length(sha256) = 64),
    length        BIGINT      NOT NULL,
    data          BYTEA       NOT NULL,
    expires       TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set when a newer version of the same role is stored; pruning of old timestamp and
    -- snapshot versions counts the retention from here.
    superseded_at TIMESTAMPTZ,
    UNIQUE (gun, role, version)
);

CREATE INDEX tuf_files_gun_sha256 ON tuf_files (gun, sha256);
CREATE INDEX tuf_files_superseded ON tuf_files (superseded_at) WHERE superseded_at IS NOT NULL;
CREATE INDEX tuf_files_timestamp_expiry ON tuf_files (expires) WHERE role = 'timestamp' AND superseded_at IS NULL;

-- One row per published timestamp and per repository deletion.
CREATE TABLE changefeed (
    id         BIGSERIAL   PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    gun        TEXT        NOT NULL,
    version    BIGINT      NOT NULL,
    sha256     TEXT,
    category   TEXT        NOT NULL CHECK (category IN ('update', 'deletion'))
);

CREATE INDEX changefeed_gun ON changefeed (gun, id);

-- Server-held timestamp and snapshot keys. Private keys are PKCS#8 encrypted with AES-256-GCM
-- under the key encryption key; the nonce is stored beside the ciphertext.
CREATE TABLE server_keys (
    id                BIGSERIAL   PRIMARY KEY,
    gun               TEXT        NOT NULL,
    role              TEXT        NOT NULL CHECK (role IN ('timestamp', 'snapshot')),
    key_id            TEXT        NOT NULL CHECK (length(key_id) = 64),
    algorithm         TEXT        NOT NULL,
    public_key        TEXT        NOT NULL,
    encrypted_private BYTEA       NOT NULL,
    nonce             BYTEA       NOT NULL,
    state             TEXT        NOT NULL CHECK (state IN ('pending', 'active')),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (gun, key_id)
);

-- At most one pending key per repository and role, so repeated key requests for a repository
-- without a root return the same key instead of creating new ones.
CREATE UNIQUE INDEX server_keys_one_pending ON server_keys (gun, role) WHERE state = 'pending';
