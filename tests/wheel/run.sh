#!/usr/bin/env bash
# The one-command Python install, as CI can run it: builds the wheel exactly as `pip install .`
# does (scikit-build-core runs our CMake with NCCL_MOE_LIBRARY_ONLY=ON and bundles
# libnccl_moe.so in the package), installs it into a fresh venv, and checks from outside the
# checkout, with NCCL_MOE_LIBRARY and PYTHONPATH unset, that `import nccl_moe` finds the bundled
# library (no GPU, no PyTorch). CPU only; about one library build.
#   tests/wheel/run.sh                              one architecture, to save time: 90-real
#   WHEEL_CUDA_ARCHITECTURES=native tests/wheel/run.sh       (any CMAKE_CUDA_ARCHITECTURES value)
# Uses the tools venv of tools/setup.sh (scikit-build-core; no build isolation, so no download).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${NCCL_MOE_TOOLS_VENV:-$repo/build-tools/venv}"
work="${WHEEL_WORK_DIR:-$repo/build/wheel}"
archs="${WHEEL_CUDA_ARCHITECTURES:-90-real}"

if [ ! -x "$venv/bin/python" ]; then
  echo "wheel: no tools venv at $venv; run tools/setup.sh first" >&2
  exit 1
fi
if [ -x "$venv/bin/cmake" ]; then export PATH="$venv/bin:$PATH"; fi

start=$SECONDS
rm -rf "$work/dist" "$work/venv"
# build-dir: kept between runs, so a second run only rebuilds what changed.
"$venv/bin/python" -m pip wheel --no-build-isolation --no-deps --disable-pip-version-check -q \
  -w "$work/dist" -C build-dir="$work/cmake" -C cmake.define.CMAKE_CUDA_ARCHITECTURES="$archs" "$repo"
wheels=("$work"/dist/nccl_moe-*.whl)
if [ ${#wheels[@]} -ne 1 ] || [ ! -f "${wheels[0]}" ]; then
  echo "wheel: expected one nccl_moe wheel in $work/dist, found: ${wheels[*]}" >&2
  exit 1
fi
wheel="${wheels[0]}"
built=$((SECONDS - start))

# What the wheel holds: the package's modules and the library inside it, nothing else (no headers,
# tools or CMake files at the top of site-packages); tagged for any Python 3.
"$venv/bin/python" - "$wheel" <<'PYTHON'
import os, sys, zipfile
wheel = sys.argv[1]
name = os.path.basename(wheel)
if "-py3-none-" not in name:
    sys.exit("wheel: unexpected tag: %s" % name)
names = zipfile.ZipFile(wheel).namelist()
libraries = [n for n in names if ".so" in n]
if libraries != ["nccl_moe/lib/libnccl_moe.so"]:
    sys.exit("wheel: shared libraries %s, expected only nccl_moe/lib/libnccl_moe.so" % libraries)
stray = [n for n in names if not (n.startswith("nccl_moe/") or ".dist-info/" in n)]
if stray:
    sys.exit("wheel: files outside the package: %s" % stray)
for module in ("__init__.py", "library.py", "fused_a2a.py"):
    if "nccl_moe/" + module not in names:
        sys.exit("wheel: nccl_moe/%s missing" % module)
size = zipfile.ZipFile(wheel).getinfo("nccl_moe/lib/libnccl_moe.so").file_size
print("wheel: %s, %d files, libnccl_moe.so %.1f MB" % (name, len(names), size / 1e6))
PYTHON

python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --no-index --no-deps --disable-pip-version-check -q "$wheel"
# Its RUNPATH is the install one: no empty entry (which would search the current directory).
installed=("$work"/venv/lib/python3*/site-packages/nccl_moe/lib/libnccl_moe.so)
runpath=$(readelf -d "${installed[0]}" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]$/\1/p')
case "$runpath" in
  :* | *: | *::*) echo "wheel: the bundled library's RUNPATH '$runpath' has an empty entry" >&2; exit 1 ;;
esac
cd /
env -u NCCL_MOE_LIBRARY -u PYTHONPATH "$work/venv/bin/python" - <<'PYTHON'
import os, sys
import nccl_moe
package = os.path.dirname(nccl_moe.__file__)
if "site-packages" not in package:
    sys.exit("wheel: nccl_moe imported from %s, not the venv" % package)
library = nccl_moe.load_library()
bundled = os.path.join(package, "lib", "libnccl_moe.so")
if library.path != bundled:
    sys.exit("wheel: loaded %s, not the bundled %s" % (library.path, bundled))
if library.version_string() != nccl_moe.__version__:
    sys.exit("wheel: library %s, package %s" % (library.version_string(), nccl_moe.__version__))
if "torch" in sys.modules:
    sys.exit("wheel: importing nccl_moe imported torch")
print("wheel: import nccl_moe finds its bundled library %s (version %s)" % (library.path, library.version_string()))
PYTHON
# NCCL_MOE_LIBRARY still overrides the bundled copy (and a wrong one is an error, not a fallback).
NCCL_MOE_LIBRARY=/nonexistent/libnccl_moe.so "$work/venv/bin/python" -c '
import nccl_moe
try:
    nccl_moe.load_library()
except nccl_moe.LibraryNotFoundError as error:
    assert "NCCL_MOE_LIBRARY: /nonexistent/libnccl_moe.so" in str(error), error
else:
    raise SystemExit("wheel: NCCL_MOE_LIBRARY did not override the bundled library")
'
echo "wheel: ok (wheel built in ${built} s, all in $((SECONDS - start)) s)"
