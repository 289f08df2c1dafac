#!/usr/bin/env python3
"""Every project include points down the layers (DESIGN: a layer includes only the layers below).

    python3 tests/layering/check_layers.py [REPO]     # exit 1 listing every include that points up

Layers, lowest first (a folder may include itself and the folders listed for it):

  topology/           the cluster model, probe and formats (includes only itself)
  src/misc/           status, logging, environment, CUDA RAII, last error, the comm registry
  src/plan/           creation-time arithmetic (shape limits, routing checks, plan choice,
                      cost model, the buffer layout; pure C++): misc, topology
  src/transport/      the cross-rank protocol, peer memory, the rail exchange: misc, plan
  src/kernels/        layout, dispatch, combine, FP8: misc, plan, transport
  src/reference/      the CPU oracle and CPU models (group layout, two-hop plan): misc, plan
  src/core/           the API entry points and the pipelines: everything above
  plugin/             the NCCL tuner glue: misc (the library does not include its plugin)
  tools/common/       flag parsing, output files: nothing of the library
  tools/bootstrap/    the rank bootstrap (installed beside the library): nothing of the library
  tools/*             the CLIs: topology, plan, reference, misc, tools/common, the public header

KNOWN lists the includes that still point up, each with the work that removes it; the check fails
on any other, so no new one can land.

The build follows the same folders: a source file is compiled by the nearest CMakeLists.txt above
it and reaches other folders as that CMakeLists.txt's target (src/plan as nccl_moe_plan), so the
check also fails on a CMakeLists.txt that names a source file another one owns (outside its
folder, or below a CMakeLists.txt of its own). The standalone projects under tests/ (their own
project(): the fuzz and sanitizer builds) compile library sources on purpose and are not checked.
"""
import os
import re
import sys

ALLOWED = {
    "topology": {"topology"},
    "src/misc": {"misc"},
    "src/plan": {"misc", "plan", "topology"},
    "src/transport": {"misc", "plan", "transport"},
    "src/kernels": {"misc", "plan", "transport", "kernels"},
    "src/reference": {"misc", "plan", "reference"},
    "src/core": {"misc", "plan", "transport", "kernels", "reference", "core", "topology"},
    "plugin": {"misc", "plugin"},
    "tools/common": {"tools"},
    "tools/bootstrap": {"tools"},
    "tools": {"topology", "plan", "reference", "tools", "misc"},
}

# Includes that still point up: (file, included folder) -> the work that removes it. Empty now;
# an entry must name the work, and the check fails once the include is gone (stale_known).
KNOWN = {}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"', re.M)

# A source file named in a CMakeLists.txt: a C, C++ or CUDA file, with or without a folder.
SOURCE = re.compile(r'[^\s()"]+\.(?:cc|cu|cpp|c)\b')
STANDALONE = re.compile(r'^\s*project\s*\(', re.M | re.I)


def layer_of(path):
    """The ALLOWED key governing `path` (the longest matching folder prefix), or None."""
    best = None
    for key in ALLOWED:
        if path == key or path.startswith(key + "/"):
            if best is None or len(key) > len(best):
                best = key
    return best


def violations(repo):
    found = []
    for top in ("src", "topology", "plugin", "tools"):
        for folder, _, files in os.walk(os.path.join(repo, top)):
            for name in files:
                if not name.endswith((".h", ".cc", ".cu", ".cuh")):
                    continue
                path = os.path.relpath(os.path.join(folder, name), repo)
                layer = layer_of(path)
                if layer is None:
                    continue
                with open(os.path.join(repo, path), encoding="utf-8", errors="replace") as handle:
                    text = handle.read()
                for match in INCLUDE.finditer(text):
                    target = match.group(1)
                    if target in ALLOWED[layer] or (path, target) in KNOWN:
                        continue
                    line = text.count("\n", 0, match.start()) + 1
                    found.append("%s:%d includes %s/ (layer %s may include %s)"
                                 % (path, line, target, layer, ", ".join(sorted(ALLOWED[layer]))))
    return found


def owning_folder(repo, path):
    """The folder of the CMakeLists.txt nearest above `path` (relative to repo)."""
    folder = os.path.dirname(path)
    while folder and not os.path.exists(os.path.join(repo, folder, "CMakeLists.txt")):
        folder = os.path.dirname(folder)
    return folder


def sources_outside_folder(repo):
    """Source files that a CMakeLists.txt of the build compiles although another folder's
    CMakeLists.txt owns them (outside its folder, or in a subfolder with a CMakeLists.txt of its own)."""
    found = []
    for folder, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if not d.startswith(".") and not d.startswith("build")]
        if "CMakeLists.txt" not in files:
            continue
        here = os.path.relpath(folder, repo)
        here = "" if here == "." else here
        path = os.path.join(here, "CMakeLists.txt")
        with open(os.path.join(repo, path), encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        if here and STANDALONE.search(text):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for match in SOURCE.finditer(line.split("#", 1)[0]):
                name = match.group(0)
                for root in ("${PROJECT_SOURCE_DIR}/", "${CMAKE_SOURCE_DIR}/"):
                    if name.startswith(root):
                        source = name[len(root):]
                        break
                else:
                    source = os.path.join(here, name.replace("${CMAKE_CURRENT_SOURCE_DIR}/", ""))
                source = os.path.normpath(source)
                if source.startswith("${") or source.startswith("..") or owning_folder(repo, source) != here:
                    found.append("%s:%d compiles %s, which the CMakeLists.txt of %s owns (link its target instead)"
                                 % (path, number, name, owning_folder(repo, source) or "the top level"))
    return found


def stale_known(repo):
    """KNOWN entries whose include is gone: the list must shrink with the work it names."""
    stale = []
    for (path, target), why in KNOWN.items():
        full = os.path.join(repo, path)
        text = open(full, encoding="utf-8").read() if os.path.exists(full) else ""
        if not any(m.group(1) == target for m in INCLUDE.finditer(text)):
            stale.append("%s no longer includes %s/: remove it from KNOWN (%s)" % (path, target, why))
    return stale


def self_test():
    """The check finds an include that points up (misc including core) and a CMakeLists.txt that
    compiles another folder's source (topology compiling plan's) in a scratch tree, and passes a
    standalone project that does so on purpose."""
    import tempfile
    with tempfile.TemporaryDirectory() as repo:
        os.makedirs(os.path.join(repo, "src", "misc"))
        with open(os.path.join(repo, "src", "misc", "bad.h"), "w") as handle:
            handle.write('#include "misc/log.h"\n#include "core/comm.h"\n')
        os.makedirs(os.path.join(repo, "topology"))
        with open(os.path.join(repo, "topology", "CMakeLists.txt"), "w") as handle:
            handle.write("# model.cc is ours\nadd_library(t STATIC model.cc\n"
                         "  ${PROJECT_SOURCE_DIR}/src/plan/cost_model.cc)\n")
        os.makedirs(os.path.join(repo, "tests", "fuzz"))
        with open(os.path.join(repo, "tests", "fuzz", "CMakeLists.txt"), "w") as handle:
            handle.write("project(fuzz)\nadd_library(f OBJECT ${REPO}/src/plan/cost_model.cc)\n")
        found = violations(repo)
        misplaced = sources_outside_folder(repo)
    ok = (len(found) == 1 and found[0].startswith("src/misc/bad.h:2 includes core/") and len(misplaced) == 1 and
          misplaced[0].startswith("topology/CMakeLists.txt:3 compiles ${PROJECT_SOURCE_DIR}/src/plan/cost_model.cc"))
    print("layering self-test: %s" % ("ok" if ok else "FAILED: %s" % (found + misplaced)))
    return 0 if ok else 1


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    repo = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), "..", ".."))
    problems = violations(repo) + stale_known(repo) + sources_outside_folder(repo)
    for problem in problems:
        print(problem)
    print("layering: %s" % ("%d problem(s)" % len(problems) if problems else
                            "every include points down; every folder's sources are compiled in it"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
