#!/usr/bin/env python3
"""Publish a benchmark repository with many tags to a running Signet server.

The script fetches the server's timestamp and snapshot keys, signs root v1 and
targets v1 with new keys, and uploads both in one multipart POST, after which
Signet signs snapshot and timestamp itself. targets.json lists --tag-count tags
named tag-0000, tag-0001, ... Each tag has a sha256 digest, a length and an
OCI manifest mediaType. The digests and lengths are made up and deterministic,
so every run produces targets.json of the same size. The signatures and
expiry dates differ between runs.

The repository named by --gun must not have been published to before.
Install the dependencies with `pip install -r requirements.txt`.

Example:
    python3 setup_repository.py --server http://127.0.0.1:4443 \\
        --gun registry.example.com/bench/app
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.metadata import Key, Metadata, Root, Snapshot, TargetFile, Targets, Timestamp

HTTP_TIMEOUT_SECONDS = 30
MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
EXPIRY = timedelta(days=365)


class SetupError(Exception):
    """Raised when the server rejects a request or returns something unexpected."""


def http_request(url: str, body: bytes | None = None, content_type: str = "") -> tuple[int, bytes]:
    """Send a GET, or a POST when body is set, and return the status and response body."""
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def fetch_server_key(tuf_url: str, role: str) -> Key:
    """Fetch the server-held public key of role (timestamp or snapshot) as a TUF key."""
    url = f"{tuf_url}{role}.key"
    status, body = http_request(url)
    if status != 200:
        raise SetupError(f"GET {url} returned status {status}: {body[:500]!r}")
    try:
        key_dict = json.loads(body)
        # A TUF key id is the sha256 of the key object's canonical JSON.
        keyid = hashlib.sha256(encode_canonical(key_dict).encode()).hexdigest()
        return Key.from_dict(keyid, dict(key_dict))
    except (ValueError, KeyError, TypeError) as error:
        raise SetupError(f"GET {url} returned an invalid TUF key ({error}): {body[:500]!r}") from error


def make_tags(count: int) -> dict[str, tuple[int, str]]:
    """Return tag name -> (manifest length in bytes, sha256 hex digest) for count tags."""
    tags = {}
    for index in range(count):
        name = f"tag-{index:04d}"
        digest = hashlib.sha256(f"signet benchmark manifest {name}".encode()).hexdigest()
        tags[name] = (1000 + index % 1000, digest)
    return tags


def build_root(root_signer: Signer, targets_signer: Signer, timestamp_key: Key,
               snapshot_key: Key, expires: datetime) -> Metadata[Root]:
    root = Root(version=1, expires=expires, consistent_snapshot=True)
    root.add_key(root_signer.public_key, Root.type)
    root.add_key(targets_signer.public_key, Targets.type)
    root.add_key(timestamp_key, Timestamp.type)
    root.add_key(snapshot_key, Snapshot.type)
    metadata = Metadata(root)
    metadata.sign(root_signer)
    return metadata


def build_targets(tags: dict[str, tuple[int, str]], signer: Signer,
                  expires: datetime) -> Metadata[Targets]:
    targets = Targets(version=1, expires=expires)
    for name, (length, digest) in tags.items():
        targets.targets[name] = TargetFile(
            length, {"sha256": digest}, name,
            unrecognized_fields={"custom": {"mediaType": MEDIA_TYPE}},
        )
    metadata = Metadata(targets)
    metadata.sign(signer)
    return metadata


def encode_multipart(files: dict[str, bytes]) -> tuple[bytes, str]:
    """Encode role name -> metadata bytes as multipart/form-data, one "files" part per role.

    Returns the request body and its Content-Type header value.
    """
    boundary = f"signet-bench-{secrets.token_hex(16)}"
    body = bytearray()
    for role_name, data in files.items():
        if boundary.encode() in data:
            raise SetupError(f"multipart boundary {boundary} occurs in the {role_name} metadata")
        body += f"--{boundary}\r\n".encode()
        body += f'Content-Disposition: form-data; name="files"; filename="{role_name}"\r\n'.encode()
        body += b"Content-Type: application/octet-stream\r\n\r\n"
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f"multipart/form-data; boundary={boundary}"


def publish(server: str, gun: str, tag_count: int) -> None:
    tuf_url = f"{server.rstrip('/')}/v2/{gun}/_trust/tuf/"
    timestamp_key = fetch_server_key(tuf_url, "timestamp")
    snapshot_key = fetch_server_key(tuf_url, "snapshot")

    # Signet rejects fractional seconds in expires, so drop the microseconds.
    expires = (datetime.now(UTC) + EXPIRY).replace(microsecond=0)
    root_signer = CryptoSigner.generate_ed25519()
    targets_signer = CryptoSigner.generate_ed25519()
    root = build_root(root_signer, targets_signer, timestamp_key, snapshot_key, expires)
    targets = build_targets(make_tags(tag_count), targets_signer, expires)
    targets_bytes = targets.to_bytes()

    body, content_type = encode_multipart({"root": root.to_bytes(), "targets": targets_bytes})
    status, response = http_request(tuf_url, body, content_type)
    if status != 200:
        hint = " (409 means the repository already has a root: pass a new --gun)" if status == 409 else ""
        raise SetupError(f"POST {tuf_url} returned status {status}{hint}: {response[:500]!r}")
    print(f"published {gun}: {tag_count} tags, targets.json {len(targets_bytes)} bytes, "
          f"server response {response.decode(errors='replace')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True,
                        help="Signet base URL, for example http://127.0.0.1:4443")
    parser.add_argument("--gun", required=True,
                        help="repository name that has no metadata yet, for example "
                             "registry.example.com/bench/app")
    parser.add_argument("--tag-count", type=int, default=1000,
                        help="number of tags in targets.json, 1 to 10000 (default: 1000)")
    args = parser.parse_args()
    if not 1 <= args.tag_count <= 10000:
        parser.error(f"--tag-count must be between 1 and 10000, got {args.tag_count}")

    try:
        publish(args.server, args.gun, args.tag_count)
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except urllib.error.URLError as error:
        print(f"error: {args.server} is not reachable: {error.reason}", file=sys.stderr)
        return 1
    except TimeoutError:
        print(f"error: {args.server} sent no response within {HTTP_TIMEOUT_SECONDS} s",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
