#!/usr/bin/env python3
"""Verify one target of a repository with python-tuf's ngclient.

Used by the interoperability tests to show that python-tuf, an implementation Signet did not
write, accepts a repository that the `signet` command published. Exits 0 when the target's
length and sha256 match the expected values, 1 otherwise.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from tuf.ngclient import Updater


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", required=True, help="server base URL, such as http://127.0.0.1:4443")
    parser.add_argument("--gun", required=True, help="repository name")
    parser.add_argument("--root", required=True, type=Path, help="trusted root metadata file")
    parser.add_argument("--target", required=True, help="target (tag) name")
    parser.add_argument("--sha256", required=True, help="expected sha256 hex digest")
    parser.add_argument("--length", required=True, type=int, help="expected length in bytes")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        metadata_dir = Path(workdir) / "metadata"
        metadata_dir.mkdir()
        updater = Updater(
            bootstrap=args.root.read_bytes(),
            metadata_dir=str(metadata_dir),
            metadata_base_url=f"{args.server}/v2/{args.gun}/_trust/tuf/",
            target_base_url=f"{args.server}/unused/",
            target_dir=str(Path(workdir) / "targets"),
        )
        updater.refresh()
        info = updater.get_targetinfo(args.target)

    if info is None:
        print(f"python-tuf: target {args.target} not found")
        return 1
    if info.hashes.get("sha256") != args.sha256 or info.length != args.length:
        print(f"python-tuf: target {args.target} is {info.hashes} length {info.length}")
        return 1
    print(f"python-tuf: verified {args.target} sha256:{args.sha256} length {args.length}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
