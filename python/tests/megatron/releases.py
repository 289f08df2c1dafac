#!/usr/bin/env python3
"""The Megatron-Core releases nccl_moe is tested against: pinned wheels, fetched and checked.

    python3 python/tests/megatron/releases.py fetch [--dest DIR]   # pip download + sha256 check
    python3 python/tests/megatron/releases.py list                 # version and file, one a line

The wheels are the released ones from PyPI (cp312, manylinux x86-64: the GPU machine's Python).
Their Python sources are read as they are (the CPU compatibility test opens the wheel as a zip);
the GPU test installs each into its own folder (``pip install --target``) and runs Megatron's own
MoELayer with it. ``NCCL_MOE_MEGATRON_WHEELS`` names the folder (default
``~/.cache/nccl-moe/megatron-wheels``); a wheel already there with the right hash is not fetched
again, so an offline machine works from a folder filled elsewhere.
"""
import argparse
import hashlib
import os
import subprocess
import sys

WHEELS_ENV = "NCCL_MOE_MEGATRON_WHEELS"
PLATFORM = "manylinux_2_24_x86_64.manylinux_2_28_x86_64"

# version -> sha256 of megatron_core-<version>-cp312-cp312-<PLATFORM>.whl on PyPI
RELEASES = {
    "0.15.3": "1229221f2b8b37cfefbf3119ff920388f02fefe28aec97f69cfaf8b929459606",
    "0.16.1": "3fb26cb407aa3c4b609c08664022c08146f1648b3d6f2ef2bbe9d3b1294ace61",
    "0.17.0": "0cbacf043603f9dc2735310e1b1dcd5c076c02caab13849c2d2fe6a99cbea4f6",
    "0.18.0": "beb6f7b1462a82723cef31773dae60f54a2f7bc809e5e050cf9f59c344b5a373",
    "0.19.2": "8e3e486f13f559450415b9b9dc0ff3331a0bb83dd154553f7f350a75ff9c42b5",
}


def wheel_name(version):
    return "megatron_core-%s-cp312-cp312-%s.whl" % (version, PLATFORM)


def default_dir():
    return os.environ.get(WHEELS_ENV) or os.path.join(os.path.expanduser("~"), ".cache",
                                                      "nccl-moe", "megatron-wheels")


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel_path(version, folder=None):
    """The checked wheel of ``version`` in ``folder``; None when it is absent or its hash differs."""
    path = os.path.join(folder or default_dir(), wheel_name(version))
    if os.path.isfile(path) and sha256_of(path) == RELEASES[version]:
        return path
    return None


def fetch(folder=None, versions=None):
    """Downloads the missing wheels with pip; returns {version: path}. Raises RuntimeError naming
    what could not be fetched or did not match its pinned hash."""
    folder = folder or default_dir()
    os.makedirs(folder, exist_ok=True)
    paths, problems = {}, []
    for version in versions or sorted(RELEASES):
        path = wheel_path(version, folder)
        if path is None:
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                       "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
                       "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_24_x86_64",
                       "-d", folder, "megatron-core==%s" % version]
            result = subprocess.run(command, capture_output=True, text=True)
            path = wheel_path(version, folder)
            if path is None:
                problems.append("megatron-core %s: %s" % (
                    version, (result.stderr.strip().splitlines() or ["hash mismatch"])[-1]))
                continue
        paths[version] = path
    if problems:
        raise RuntimeError("could not fetch the pinned Megatron-Core wheels into %s (set %s to a "
                           "folder holding them): %s" % (folder, WHEELS_ENV, "; ".join(problems)))
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("fetch", "list"))
    parser.add_argument("--dest", default=None, help="folder of the wheels (default: %s or "
                        "~/.cache/nccl-moe/megatron-wheels)" % WHEELS_ENV)
    args = parser.parse_args()
    if args.command == "list":
        for version in sorted(RELEASES):
            print(version, wheel_name(version))
        return 0
    try:
        for version, path in sorted(fetch(args.dest).items()):
            print("%s %s" % (version, path))
    except RuntimeError as error:
        print("releases: %s" % error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
