"""Use nccl_moe as Megatron-Core's fused_a2a without editing Megatron.

``install()`` must run in every rank before the model is built. It registers
``nccl_moe.fused_a2a`` under Megatron's module name (so later imports get it) and, if Megatron's
modules were already imported, replaces the names they took from it (``from ... import
fused_dispatch`` copies the name, so patching the module alone would not reach them).
"""
import sys

MEGATRON_MODULE = "megatron.core.transformer.moe.fused_a2a"


def install(module_name=MEGATRON_MODULE):
    """Makes ``module_name`` resolve to nccl_moe.fused_a2a; returns the names replaced in
    already-imported modules as a list of "module.name" strings."""
    from . import fused_a2a

    replaced = []
    original = sys.modules.get(module_name)
    sys.modules[module_name] = fused_a2a
    if original is not None and original is not fused_a2a:
        for name in fused_a2a.__all__:
            setattr(original, name, getattr(fused_a2a, name))
    prefix = module_name.rsplit(".", 1)[0]  # the package whose modules import from it
    for mod_name, module in list(sys.modules.items()):
        if module is None or module is fused_a2a or not mod_name.startswith(prefix):
            continue
        namespace = getattr(module, "__dict__", {})
        for name in fused_a2a.__all__:
            if name not in namespace:
                continue
            value = namespace[name]
            # None: Megatron's placeholder when DeepEP/HybridEP is missing; bool: HAVE_* flags.
            came_from_original = (value is None or isinstance(value, bool)
                                  or getattr(value, "__module__", None) == module_name)
            if came_from_original and value is not getattr(fused_a2a, name):
                setattr(module, name, getattr(fused_a2a, name))
                replaced.append("%s.%s" % (mod_name, name))
    return replaced
