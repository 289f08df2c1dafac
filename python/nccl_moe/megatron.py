"""Use nccl_moe as Megatron-Core's fused_a2a without editing Megatron.

``install()`` must run in every rank before the model is built, before or after Megatron's modules
are imported. It first reads the installed Megatron-Core release from its sources (without
importing it) and refuses, naming the version and the missing piece, a release nccl_moe does not
serve (see ``nccl_moe.megatron_compat.SUPPORTED``). Then it registers ``nccl_moe.fused_a2a`` under
Megatron's module name (so later imports get it) and, if Megatron's modules were already imported,
replaces the names they took from Megatron's own module (``from ... import fused_dispatch`` copies
the name, so patching the module alone would not reach them).
"""
import inspect
import os
import sys

from . import megatron_compat

MEGATRON_MODULE = megatron_compat.FUSED_A2A
UNCHECKED_ENV = "NCCL_MOE_MEGATRON_UNCHECKED"  # "1": serve a release we do not know


class UnsupportedMegatronError(RuntimeError):
    """The installed Megatron-Core release needs something nccl_moe does not provide."""


def _our_api(module):
    api = {}
    for name in module.__all__:
        value = getattr(module, name)
        api[name] = inspect.signature(value) if inspect.isfunction(value) else None
    return api


def check_release(package_dir=None, module=None):
    """Problems that stop nccl_moe from serving the Megatron-Core at ``package_dir`` (default: the
    one ``import megatron`` would load); an empty list when it is served or absent."""
    package_dir = package_dir or megatron_compat.megatron_package_dir()
    if package_dir is None:
        return []
    if module is None:
        from . import fused_a2a as module
    return megatron_compat.release_problems(package_dir, _our_api(module))


def install(module_name=MEGATRON_MODULE):
    """Makes ``module_name`` resolve to nccl_moe.fused_a2a; returns the names replaced in
    already-imported modules as a list of "module.name" strings. Raises
    UnsupportedMegatronError for a release it cannot serve (``NCCL_MOE_MEGATRON_UNCHECKED=1``
    turns an unknown version, but not a missing name, into a warning)."""
    from . import fused_a2a

    problems = check_release(module=fused_a2a)
    if problems and os.environ.get(UNCHECKED_ENV, "0") == "1":
        problems = [p for p in problems if "is not a release nccl_moe knows" not in p]
    if problems:
        raise UnsupportedMegatronError("nccl_moe cannot serve this Megatron-Core: "
                                       + "; ".join(problems))

    original = sys.modules.get(module_name)
    # What Megatron's own module held before we replace it: a name another module took from it
    # (``from fused_a2a import x``) is identical to it, whatever its type (function, None,
    # a bool flag, an int constant such as HYBRIDEP_TOKEN_ALIGNMENT).
    before = {}
    if original is not None and original is not fused_a2a:
        before = {name: getattr(original, name) for name in fused_a2a.__all__
                  if hasattr(original, name)}
    sys.modules[module_name] = fused_a2a
    if before:
        for name in fused_a2a.__all__:
            setattr(original, name, getattr(fused_a2a, name))
    parent, _, leaf = module_name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], leaf, fused_a2a)

    replaced = []
    prefix = module_name.split(".", 1)[0] + "."  # every megatron.* module may have imported it
    for mod_name, module in list(sys.modules.items()):
        if module is None or module is fused_a2a or module is original or not mod_name.startswith(prefix):
            continue
        namespace = getattr(module, "__dict__", {})
        for name, old in before.items():
            if name in namespace and namespace[name] is old and old is not getattr(fused_a2a, name):
                setattr(module, name, getattr(fused_a2a, name))
                replaced.append("%s.%s" % (mod_name, name))
    return replaced
