#!/usr/bin/env python3
"""Helpers for bench/client_lookup.sh: stage many tags, and look up a tag with python-tuf.

Subcommands:
  digest       Print the made-up manifest digest that `stage` signs for a tag.
  stage        Append tags to the staged changes of a `signet` home, so that one
               `signet publish` signs them all. The home must already hold staged.json
               for the repository, as `signet sign --no-publish` leaves it.
  lookup       Look up one tag with python-tuf's ngclient, as `signet lookup` does, and
               print its sha256 digest. hyperfine times this command.
  time-lookup  Run the same lookup several times in one process and print the time of
               refresh() plus get_targetinfo() alone, without interpreter start-up,
               imports and the Updater constructor, as JSON.

python-tuf 7 requires the `bootstrap=` argument for the trusted root. A fresh lookup
passes the bytes of the root file. A warm lookup passes None, so ngclient reads root.json
from the metadata directory, as `signet` reads the root stored in its home.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

from tuf.ngclient import Updater

# Bytes that `signet` keeps as they are when it turns a repository name into a directory
# name. It percent-encodes every other byte with uppercase hex (client/src/state.rs).
DIRECTORY_NAME_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


class BenchError(Exception):
    """Raised when the home or the lookup result is not what the benchmark expects."""


def encode_directory_name(gun: str) -> str:
    """Percent-encode a repository name into one path segment, as `signet` does."""
    parts = []
    for byte in gun.encode():
        parts.append(chr(byte) if byte in DIRECTORY_NAME_SAFE else f"%{byte:02X}")
    return "".join(parts)


def tag_digest(tag: str) -> str:
    """Return a made-up, deterministic sha256 hex digest for the manifest of a tag."""
    return hashlib.sha256(f"signet client benchmark manifest {tag}".encode()).hexdigest()


def tag_size(index: int) -> int:
    """Return a made-up, deterministic manifest size in bytes for the tag with this index."""
    return 1000 + index % 1000


def stage(home: Path, gun: str, first: int, count: int) -> None:
    """Append tags tag-FIRST to tag-(FIRST+COUNT-1), zero-padded to 4 digits, to staged.json."""
    staged_path = home / "repositories" / encode_directory_name(gun) / "staged.json"
    if not staged_path.is_file():
        raise BenchError(
            f"{staged_path} does not exist; stage one tag with `signet sign --no-publish` first "
            "so that the repository directory exists, and pass the normalized repository name"
        )
    changes = json.loads(staged_path.read_bytes())
    if not isinstance(changes, list):
        raise BenchError(f"{staged_path} does not contain a JSON array of changes")
    for index in range(first, first + count):
        tag = f"tag-{index:04d}"
        changes.append({
            "op": "add",
            "tag": tag,
            "digest": f"sha256:{tag_digest(tag)}",
            "size": tag_size(index),
            "media_type": None,
        })
    staged_path.write_text(json.dumps(changes, indent=2))
    print(f"staged {count} tags in {staged_path}; {len(changes)} changes in total", file=sys.stderr)


def make_updater(metadata_dir: Path, base_url: str, root: Path | None) -> Updater:
    """Create an ngclient Updater, seeded with the root file when one is given."""
    metadata_dir.mkdir(parents=True, exist_ok=True)
    bootstrap = root.read_bytes() if root is not None else None
    return Updater(metadata_dir=str(metadata_dir), metadata_base_url=base_url, bootstrap=bootstrap)


def find_digest(updater: Updater, tag: str) -> str:
    """Refresh the top-level metadata and return the sha256 hex digest signed for the tag."""
    updater.refresh()
    info = updater.get_targetinfo(tag)
    if info is None:
        raise BenchError(f"python-tuf found no target named {tag}")
    return info.hashes["sha256"]


def lookup(args: argparse.Namespace) -> None:
    updater = make_updater(args.metadata_dir, args.url, args.root)
    digest = find_digest(updater, args.tag)
    if args.expect_digest is not None and digest != args.expect_digest:
        raise BenchError(f"{args.tag} is signed as sha256:{digest}, expected sha256:{args.expect_digest}")
    print(f"sha256:{digest}")


def time_lookup(args: argparse.Namespace) -> None:
    """Print the mean, standard deviation and minimum of refresh() plus get_targetinfo() in ms.

    A fresh run (--root given) starts from a new directory under --metadata-dir, seeded with
    the root file. A warm run reuses --metadata-dir, which must already contain the metadata
    of an earlier lookup.
    """
    fresh = args.root is not None
    seconds = []
    for run in range(args.warmup + args.runs):
        metadata_dir = args.metadata_dir / f"run-{run}" if fresh else args.metadata_dir
        if fresh and metadata_dir.exists():
            raise BenchError(f"{metadata_dir} already exists; a fresh run needs a new directory")
        updater = make_updater(metadata_dir, args.url, args.root)
        start = time.perf_counter()
        find_digest(updater, args.tag)
        elapsed = time.perf_counter() - start
        if run >= args.warmup:
            seconds.append(elapsed)
    milliseconds = [value * 1000 for value in seconds]
    print(json.dumps({
        "mode": "fresh" if fresh else "warm",
        "runs": len(milliseconds),
        "mean_ms": statistics.mean(milliseconds),
        "stddev_ms": statistics.stdev(milliseconds) if len(milliseconds) > 1 else 0.0,
        "min_ms": min(milliseconds),
    }))


def add_lookup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True,
                        help="metadata base URL, such as http://127.0.0.1:4443/v2/GUN/_trust/tuf/")
    parser.add_argument("--metadata-dir", required=True, type=Path,
                        help="ngclient metadata directory, created if missing")
    parser.add_argument("--root", type=Path,
                        help="trusted root file for a fresh lookup; without it, root.json in "
                             "--metadata-dir is the trusted root")
    parser.add_argument("--tag", required=True, help="tag (target name) to look up")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    subcommands = parser.add_subparsers(dest="command", required=True)

    digest_parser = subcommands.add_parser("digest", help="print the made-up digest of a tag")
    digest_parser.add_argument("--tag", required=True, help="tag name")

    stage_parser = subcommands.add_parser("stage", help="append tags to staged.json of a signet home")
    stage_parser.add_argument("--home", required=True, type=Path, help="signet home directory")
    stage_parser.add_argument("--gun", required=True,
                              help="normalized repository name, such as registry.example.com/bench/app")
    stage_parser.add_argument("--first", type=int, default=0, help="index of the first tag (default: 0)")
    stage_parser.add_argument("--count", type=int, required=True, help="number of tags to append")

    lookup_parser = subcommands.add_parser("lookup", help="look up one tag with python-tuf")
    add_lookup_arguments(lookup_parser)
    lookup_parser.add_argument("--expect-digest", help="sha256 hex digest the tag must have")

    timing_parser = subcommands.add_parser("time-lookup", help="time lookups inside one process")
    add_lookup_arguments(timing_parser)
    timing_parser.add_argument("--runs", type=int, default=20, help="measured runs (default: 20)")
    timing_parser.add_argument("--warmup", type=int, default=3, help="unmeasured runs first (default: 3)")

    args = parser.parse_args()
    try:
        if args.command == "digest":
            print(f"sha256:{tag_digest(args.tag)}")
        elif args.command == "stage":
            if not 0 <= args.first <= 9999 or not 1 <= args.count <= 10000 - args.first:
                parser.error("tags are numbered 0 to 9999: need 0 <= --first and 1 <= --count <= 10000 - --first")
            stage(args.home, args.gun, args.first, args.count)
        elif args.command == "lookup":
            lookup(args)
        else:
            if args.runs < 2 or args.warmup < 0:
                parser.error("time-lookup needs --runs of at least 2 and --warmup of at least 0")
            time_lookup(args)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
