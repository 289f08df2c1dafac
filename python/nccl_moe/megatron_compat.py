"""Which Megatron-Core releases nccl_moe serves, and checks read from a release's own sources.

Pure Python (``ast``, no PyTorch, no import of Megatron): ``nccl_moe.megatron.install()`` uses it
to refuse a release it does not know before Megatron fails inside a forward pass, and the CPU test
suite uses it on the released wheels, so that a release adding a name or a keyword we lack fails CI.

* ``SUPPORTED``: (major, minor) -> the flex backends that release has;
* ``imported_names(source)``: every name a module imports from Megatron's ``fused_a2a``;
* ``call_sites(source, names)``: every call of those names, with its positional count and keywords;
* ``signature_from_ast(node)`` / ``api_signatures(sources)``: our functions' signatures from our
  own sources, so that the check needs no PyTorch;
* ``binding_error(signature, call)``: why a call would not bind to a signature (None if it does);
* ``release_of(package_dir)``: the release of an installed ``megatron`` package, read from its
  ``core/package_info.py`` without importing it.
"""
import ast
import inspect
import os
from dataclasses import dataclass
from typing import Optional, Tuple

FUSED_A2A = "megatron.core.transformer.moe.fused_a2a"

# The releases served, with the flex backends each one has (moe_flex_dispatcher_backend values;
# 0.15 selects DeepEP with moe_enable_deepep).
SUPPORTED = {
    (0, 15): ("deepep",),
    (0, 16): ("deepep", "hybridep"),
    (0, 17): ("deepep", "hybridep"),
    (0, 18): ("deepep", "hybridep"),
    (0, 19): ("deepep", "hybridep", "ncclep"),
}

# The modules of a release that import from fused_a2a (relative to the megatron package).
IMPORTING_MODULES = ("core/transformer/moe/token_dispatcher.py", "core/parallel_state.py")


@dataclass(frozen=True)
class CallSite:
    """One call of an imported name: ``name(<positional> args, keywords...)``."""

    path: str
    line: int
    name: str
    positional: int
    keywords: Tuple[str, ...]
    star_args: bool  # *args or **kwargs: the arity is not known statically

    def where(self):
        return "%s:%d" % (self.path, self.line)


def imported_names(source, module=FUSED_A2A):
    """Names imported with ``from <module> import ...`` anywhere in ``source`` (also inside
    functions: Megatron imports some lazily)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == module and node.level == 0:
            names.update(alias.name for alias in node.names)
    return names


def call_sites(source, names, path="<source>"):
    """Calls of ``names`` (plain ``name(...)`` calls) in ``source``."""
    sites = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
            star = any(isinstance(a, ast.Starred) for a in node.args) or any(
                k.arg is None for k in node.keywords)
            sites.append(CallSite(path, node.lineno, node.func.id,
                                  sum(not isinstance(a, ast.Starred) for a in node.args),
                                  tuple(k.arg for k in node.keywords if k.arg is not None), star))
    return sorted(sites, key=lambda s: s.line)


def _parameters(args):
    kind = inspect.Parameter
    params = []
    positional = list(args.posonlyargs) + list(args.args)
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for i, (arg, default) in enumerate(zip(positional, defaults)):
        params.append(kind(arg.arg, kind.POSITIONAL_ONLY if i < len(args.posonlyargs)
                           else kind.POSITIONAL_OR_KEYWORD,
                           default=kind.empty if default is None else "default"))
    if args.vararg is not None:
        params.append(kind(args.vararg.arg, kind.VAR_POSITIONAL))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        params.append(kind(arg.arg, kind.KEYWORD_ONLY,
                           default=kind.empty if default is None else "default"))
    if args.kwarg is not None:
        params.append(kind(args.kwarg.arg, kind.VAR_KEYWORD))
    return params


def signature_from_ast(node):
    """inspect.Signature of an ``ast.FunctionDef`` (defaults are placeholders)."""
    return inspect.Signature(_parameters(node.args))


def module_api(source):
    """Top-level names of a module source: functions -> Signature, classes and constants -> None.
    Also names defined under top-level ``if``/``try`` blocks (Megatron defines its wrappers that
    way), and names re-exported with ``from .x import ...``."""
    api = {}

    def visit(body):
        for node in body:
            if isinstance(node, ast.FunctionDef):
                api[node.name] = signature_from_ast(node)
            elif isinstance(node, ast.ClassDef):
                api.setdefault(node.name, None)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            api.setdefault(name.id, None)
            elif isinstance(node, ast.ImportFrom) and node.level > 0:
                for alias in node.names:
                    api.setdefault(alias.asname or alias.name, ("reexport", node.module, alias.name))
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)

    visit(ast.parse(source).body)
    return api


def api_signatures(sources):
    """The API of a package module whose re-exports are resolved: ``sources`` maps module name
    ("fused_a2a", "nccl_ep") to source text; the result is the first module's API."""
    apis = {name: module_api(text) for name, text in sources.items()}
    root = next(iter(sources))
    resolved = {}
    for name, value in apis[root].items():
        if isinstance(value, tuple) and value[0] == "reexport":
            _, module, original = value
            if module not in apis:
                value = None  # an object from a module not given: it exists, nothing more known
            elif original not in apis[module]:
                raise KeyError("%s imports %s.%s, which that module lacks" % (root, module, original))
            else:
                value = apis[module][original]
        resolved[name] = value
    return resolved


def binding_error(signature, call):
    """Why ``call`` (a CallSite) would fail to bind to ``signature``; None when it binds."""
    if signature is None:
        return "%s is not a function here" % call.name
    if call.star_args:
        return None  # *args/**kwargs: only the names can be checked, which bind() cannot do
    try:
        signature.bind(*range(call.positional), **{k: None for k in call.keywords})
    except TypeError as error:
        return str(error)
    return None


def release_of(package_dir):
    """(major, minor, version string) of the ``megatron`` package at ``package_dir``, read from
    ``core/package_info.py``; None when it is not there."""
    path = os.path.join(package_dir, "core", "package_info.py")
    if not os.path.isfile(path):
        return None
    values = {}
    with open(path, encoding="utf-8") as handle:
        for node in ast.parse(handle.read()).body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)):
                try:
                    values[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    pass
    try:
        major, minor = int(values["MAJOR"]), int(values["MINOR"])
    except (KeyError, ValueError):
        return None
    return major, minor, "%d.%d.%s" % (major, minor, values.get("PATCH", "?"))


def release_problems(package_dir, our_api):
    """What stops nccl_moe from serving the release at ``package_dir``: a list of messages
    (empty when it is served). ``our_api``: name -> inspect.Signature or None (a constant)."""
    release = release_of(package_dir)
    if release is None:
        return ["cannot read the Megatron-Core release at %s (core/package_info.py)" % package_dir]
    major, minor, version = release
    problems = []
    if (major, minor) not in SUPPORTED:
        known = ", ".join("%d.%d" % key for key in sorted(SUPPORTED))
        problems.append("Megatron-Core %s is not a release nccl_moe knows (it serves %s); set "
                        "NCCL_MOE_MEGATRON_UNCHECKED=1 to try it anyway" % (version, known))
    for relative in IMPORTING_MODULES:
        path = os.path.join(package_dir, relative)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as handle:
            source = handle.read()
        names = imported_names(source)
        for name in sorted(names - set(our_api)):
            problems.append("Megatron-Core %s imports %s from fused_a2a (%s), which nccl_moe "
                            "lacks" % (version, name, relative))
        for site in call_sites(source, names & set(our_api), relative):
            error = binding_error(our_api[site.name], site)
            if error:
                problems.append("Megatron-Core %s calls %s at %s in a way nccl_moe's does not "
                                "accept: %s" % (version, site.name, site.where(), error))
    return problems


def megatron_package_dir() -> Optional[str]:
    """Where ``import megatron`` would come from, without importing it (None if absent)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("megatron")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        if os.path.isdir(os.path.join(location, "core")):
            return location
    return None
