#!/usr/bin/env python3
"""Check that python-tuf 7, a TUF implementation we did not write, works with Signet.

The script publishes metadata that python-tuf's Metadata API builds and signs
to a running Signet server, then reads it back with python-tuf's ngclient
Updater. A passing run shows that:

* Signet serves its timestamp and snapshot keys as TUF key objects whose key
  ids python-tuf computes the same way, and a not-yet-published repository
  returns the same pending keys on every request.
* Signet accepts root (ed25519 key) and targets (ecdsa-sha2-nistp256 key)
  metadata in one Notary-style multipart upload and signs snapshot and
  timestamp itself.
* The Updater verifies the chain Signet serves with consistent snapshots and
  reads each tag's length, sha256 hash and custom mediaType.
* A targets update reaches an Updater that reuses the same metadata cache.
* Signet rejects a targets version it already has with 409 and targets signed
  by a key that root does not list with 400, and neither upload changes what
  clients see.

The repository named by --gun must not have been published to before. Each run
writes its metadata cache and the uploaded files to a new run-* folder under
--workdir. Install the dependencies with `pip install -r requirements.txt`.

Example:
    python3 python_tuf_roundtrip.py --server http://127.0.0.1:4443 \\
        --gun registry.example.com/team/app --workdir /tmp/python-tuf-interop
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import sys
import tempfile
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from securesystemslib.exceptions import FormatError
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.exceptions import DownloadError, RepositoryError
from tuf.api.metadata import Key, Metadata, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.ngclient import Updater

HTTP_TIMEOUT_SECONDS = 15
MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"

# Manifest digests that public Dockerfiles and Compose files pin:
# docker.io/library/nginx:1.13.9, docker.io/library/alpine:3.19 and two
# digests that docker.io/library/debian:bookworm-slim has pointed to.
NGINX_1_13_9 = "4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de"
ALPINE_3_19 = "51b67269f354137895d43f3b3d810bfacd3945438e94dc5ac55fdac340352f48"
DEBIAN_BOOKWORM_SLIM_A = "abd67ffcfa541b485a3dff59865ab629aa048a6c613e639d36e7456b0b229241"
DEBIAN_BOOKWORM_SLIM_B = "60eac759739651111db372c07be67863818726f754804b8707c90979bda511df"

# Tag -> (manifest length in bytes, sha256 digest).
# NOTE: the lengths are placeholders because the real manifest sizes are not
# known here. The checks only compare them with what Signet serves back.
TARGETS_V1 = {
    "1.13.9": (1570, NGINX_1_13_9),
    "latest": (528, ALPINE_3_19),
    "stable": (529, DEBIAN_BOOKWORM_SLIM_A),
}
# Version 2 moves "stable" to another digest, as a publisher moving a tag does.
CHANGED_TAG = "stable"
TARGETS_V2 = {**TARGETS_V1, CHANGED_TAG: (529, DEBIAN_BOOKWORM_SLIM_B)}


class StepFailed(Exception):
    """Raised when a check fails that later steps depend on."""


class CheckCounter:
    """Tally of passed and failed checks that prints one line per check."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"PASS {name}")
        else:
            self.failed += 1
            print(f"FAIL {name}: {detail}")
        return ok

    def require(self, name: str, ok: bool, detail: str = "") -> None:
        if not self.check(name, ok, detail):
            raise StepFailed(name)


def http_request(url: str, body: bytes | None = None, content_type: str = "") -> tuple[int, bytes]:
    """Send a GET, or a POST when body is set, and return the status and response body."""
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def fetch_server_key(checks: CheckCounter, tuf_url: str, role: str) -> Key:
    """Fetch the server's key for role twice and check that it is stable."""
    url = f"{tuf_url}{role}.key"
    first_status, first_body = http_request(url)
    checks.require(f"GET {role}.key returns 200", first_status == 200,
                   f"status {first_status}, body {first_body[:500]!r}")
    second_status, second_body = http_request(url)
    checks.require(f"{role} key is the same on a second request",
                   second_status == 200 and second_body == first_body,
                   f"status {second_status}, first {first_body!r}, second {second_body!r}")

    try:
        key_dict = json.loads(first_body)
        # The key id is the sha256 of the key object's canonical JSON, as
        # compute_default_keyid in securesystemslib 1.x computes it.
        keyid = hashlib.sha256(encode_canonical(key_dict).encode()).hexdigest()
        key = Key.from_dict(keyid, dict(key_dict))
    except (ValueError, KeyError, TypeError, FormatError) as error:
        checks.check(f"{role} key is a TUF key object", False, f"{error}: body {first_body!r}")
        raise StepFailed(f"{role} key is a TUF key object") from error
    checks.check(f"{role} key is a TUF key object", True)
    return key


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


def build_targets(version: int, tags: dict[str, tuple[int, str]], signer: Signer,
                  expires: datetime) -> Metadata[Targets]:
    targets = Targets(version=version, expires=expires)
    for tag, (length, digest) in tags.items():
        targets.targets[tag] = TargetFile(
            length, {"sha256": digest}, tag,
            unrecognized_fields={"custom": {"mediaType": MEDIA_TYPE}},
        )
    metadata = Metadata(targets)
    metadata.sign(signer)
    return metadata


def encode_multipart(files: dict[str, bytes]) -> tuple[bytes, str]:
    """Encode role name -> metadata bytes as multipart/form-data, one "files" part per role.

    Returns the request body and its Content-Type header value.
    """
    boundary = f"signet-interop-{secrets.token_hex(16)}"
    body = bytearray()
    for role_name, data in files.items():
        if boundary.encode() in data:
            raise ValueError(f"multipart boundary {boundary} occurs in the {role_name} metadata")
        body += f"--{boundary}\r\n".encode()
        body += f'Content-Disposition: form-data; name="files"; filename="{role_name}"\r\n'.encode()
        body += b"Content-Type: application/octet-stream\r\n\r\n"
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f"multipart/form-data; boundary={boundary}"


def upload(tuf_url: str, upload_dir: Path, version: int,
           files: dict[str, Metadata]) -> tuple[int, bytes]:
    """POST the metadata in one multipart request, keeping a copy of each file in upload_dir."""
    encoded = {}
    for role_name, metadata in files.items():
        encoded[role_name] = metadata.to_bytes()
        (upload_dir / f"{role_name}-v{version}.json").write_bytes(encoded[role_name])
    body, content_type = encode_multipart(encoded)
    return http_request(tuf_url, body, content_type)


def check_error_response(checks: CheckCounter, name: str, status: int, body: bytes,
                         expected_status: int) -> None:
    checks.check(f"{name} returns {expected_status}", status == expected_status,
                 f"status {status}, body {body[:500]!r}")
    try:
        errors = json.loads(body)["errors"]
        is_error_list = bool(errors) and all("code" in error for error in errors)
    except (ValueError, KeyError, TypeError):
        is_error_list = False
    checks.check(f"{name} returns a JSON errors list", is_error_list, f"body {body[:500]!r}")


def refresh(checks: CheckCounter, name: str, tuf_url: str, metadata_dir: Path,
            target_dir: Path, root_bytes: bytes) -> Updater:
    """Create an Updater that trusts root_bytes and refresh all top-level metadata."""
    try:
        updater = Updater(
            metadata_dir=str(metadata_dir),
            metadata_base_url=tuf_url,
            target_dir=str(target_dir),
            bootstrap=root_bytes,
        )
        updater.refresh()
    except (RepositoryError, DownloadError) as error:
        checks.check(f"{name}: Updater.refresh()", False, f"{type(error).__name__}: {error}")
        raise StepFailed(f"{name}: Updater.refresh()") from error
    checks.check(f"{name}: Updater.refresh()", True)
    return updater


def check_targets_version(checks: CheckCounter, name: str, metadata_dir: Path,
                          expected: int) -> None:
    # The python-tuf 7 Updater writes targets.json to its cache only after verifying it.
    version = Metadata[Targets].from_file(str(metadata_dir / "targets.json")).signed.version
    checks.check(f"{name}: targets version is {expected}", version == expected, f"got {version}")


def check_targets(checks: CheckCounter, name: str, updater: Updater,
                  tags: dict[str, tuple[int, str]]) -> None:
    for tag, (length, digest) in tags.items():
        info = updater.get_targetinfo(tag)
        if info is None:
            checks.check(f"{name}: {tag} listed", False, "get_targetinfo() returned None")
            continue
        checks.check(f"{name}: {tag} length {length}", info.length == length, f"got {info.length}")
        checks.check(f"{name}: {tag} sha256 {digest[:12]}...", info.hashes.get("sha256") == digest,
                     f"got {info.hashes}")
        custom = info.custom if isinstance(info.custom, dict) else {}
        checks.check(f"{name}: {tag} mediaType", custom.get("mediaType") == MEDIA_TYPE,
                     f"got custom {info.custom!r}")


def run(checks: CheckCounter, server: str, gun: str, workdir: Path) -> None:
    tuf_url = f"{server.rstrip('/')}/v2/{gun}/_trust/tuf/"
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    upload_dir = run_dir / "uploads"
    metadata_dir = run_dir / "metadata"
    target_dir = run_dir / "targets"
    for directory in (upload_dir, metadata_dir, target_dir):
        directory.mkdir()
    print(f"server {tuf_url}, files in {run_dir}")

    timestamp_key = fetch_server_key(checks, tuf_url, "timestamp")
    snapshot_key = fetch_server_key(checks, tuf_url, "snapshot")

    # Signet rejects fractional seconds in expires, so drop the microseconds.
    expires = (datetime.now(UTC) + timedelta(days=365)).replace(microsecond=0)
    root_signer = CryptoSigner.generate_ed25519()
    targets_signer = CryptoSigner.generate_ecdsa()
    root = build_root(root_signer, targets_signer, timestamp_key, snapshot_key, expires)
    root_bytes = root.to_bytes()

    status, body = upload(tuf_url, upload_dir, 1, {
        "root": root,
        "targets": build_targets(1, TARGETS_V1, targets_signer, expires),
    })
    checks.require("upload root and targets v1 returns 200", status == 200,
                   f"status {status}, body {body[:500]!r} (status 409 means --gun already "
                   "has a root, so pass a repository name that was never published to)")

    updater = refresh(checks, "v1", tuf_url, metadata_dir, target_dir, root_bytes)
    check_targets_version(checks, "v1", metadata_dir, 1)
    check_targets(checks, "v1", updater, TARGETS_V1)

    targets_v2 = build_targets(2, TARGETS_V2, targets_signer, expires)
    status, body = upload(tuf_url, upload_dir, 2, {"targets": targets_v2})
    checks.require("upload targets v2 returns 200", status == 200,
                   f"status {status}, body {body[:500]!r}")

    # A new Updater on the same cache must replace its cached timestamp,
    # snapshot and targets with the newer versions.
    updater = refresh(checks, "v2", tuf_url, metadata_dir, target_dir, root_bytes)
    check_targets_version(checks, "v2", metadata_dir, 2)
    check_targets(checks, "v2", updater, TARGETS_V2)

    status, body = upload(tuf_url, upload_dir, 2, {"targets": targets_v2})
    check_error_response(checks, "re-upload of targets v2", status, body, 409)

    unlisted_signer = CryptoSigner.generate_ecdsa()
    targets_v3 = build_targets(3, TARGETS_V2, unlisted_signer, expires)
    status, body = upload(tuf_url, upload_dir, 3, {"targets": targets_v3})
    check_error_response(checks, "targets v3 signed by a key not in root", status, body, 400)

    refresh(checks, "after rejected uploads", tuf_url, metadata_dir, target_dir, root_bytes)
    check_targets_version(checks, "after rejected uploads", metadata_dir, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True,
                        help="Signet base URL, for example http://127.0.0.1:4443")
    parser.add_argument("--gun", required=True,
                        help="repository name that has no metadata yet, for example "
                             "registry.example.com/team/app")
    parser.add_argument("--workdir", required=True, type=Path,
                        help="folder for the metadata cache and uploaded files, created if missing")
    args = parser.parse_args()

    checks = CheckCounter()
    try:
        run(checks, args.server, args.gun, args.workdir)
    except StepFailed as error:
        print(f"stopped: later steps depend on the failed check '{error}'")
    except urllib.error.URLError as error:
        checks.check("server reachable", False, f"{args.server}: {error.reason}")
    except TimeoutError:
        checks.check("server responds in time", False,
                     f"{args.server} sent no response within {HTTP_TIMEOUT_SECONDS} s")

    print(f"python-tuf interop: {checks.passed} passed, {checks.failed} failed")
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
