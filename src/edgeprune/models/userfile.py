"""``path/to/file.py:factory`` model specs: build a model with a factory from the user's own Python file.

The file is imported once per content (a module name derived from its resolved path, registered in
``sys.modules`` so models pickle by reference in this process), ``factory`` is looked up and called with the
spec's options plus whichever of ``num_classes``, ``in_channels``, ``image_size`` its signature accepts.
Every failure is a one-line ConfigError (bad spec, missing file/factory, bad option) or ModelError (the file
or the factory raises, or returns something that is not an ``nn.Module``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from pathlib import Path
from types import ModuleType

from torch import nn

from edgeprune.errors import ConfigError, ModelError
from edgeprune.models._common import first_line, unwrapped

PREFIX_HELP = "<path/to/file.py>:<factory>"
_BUILD_ARGS = ("num_classes", "in_channels", "image_size")
_LOADED: dict[str, tuple[tuple[int, int], ModuleType]] = {}  # resolved path -> ((mtime_ns, size), module)


def is_file_spec(spec: str) -> bool:
    """True for ``something.py:name`` (the part before the last ``:`` ends with ``.py``)."""
    head, sep, _ = spec.rpartition(":")
    return bool(sep) and head.strip().lower().endswith(".py")


def split(spec: str) -> tuple[str, str]:
    """(file part, factory name) of a file spec; ConfigError when the factory name is not an identifier."""
    head, _, name = spec.rpartition(":")
    name = name.strip()
    if not name.isidentifier():
        raise ConfigError(f"model spec {spec!r} needs a factory name after the last ':'; allowed: {PREFIX_HELP}")
    return head.strip(), name


def absolute_spec(spec: str) -> str:
    """The spec with its file path made absolute (so it resolves from any working directory)."""
    head, name = split(spec)
    return f"{Path(head).expanduser().resolve()}:{name}"


def _module_name(path: Path) -> str:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"edgeprune_userfile_{stem}_{digest}"


def _line_in(exc: BaseException, path: Path) -> int | None:
    """The last line of ``path`` in the exception's traceback (where the user's file failed)."""
    if isinstance(exc, SyntaxError) and exc.lineno:
        return exc.lineno
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    return lines[-1] if lines else None


def _import(path: Path, shown: str) -> ModuleType:
    stat = path.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _LOADED.get(str(path))
    if cached and cached[0] == key:
        return cached[1]
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"model file {shown!r} cannot be imported as Python; allowed: a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    if str(path.parent) not in sys.path:  # its own folder first, as `python file.py` has it: sibling imports resolve
        sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001  (SystemExit/KeyboardInterrupt in a user file too)
        sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        detail = f"SyntaxError: {exc.msg}" if isinstance(exc, SyntaxError) else first_line(exc)
        line = _line_in(exc, path)
        raise ModelError(
            f"model file {shown!r} failed to import: {detail}{f' (line {line})' if line else ''}"
        ) from None
    _LOADED[str(path)] = (key, module)
    return module


def import_file(head: str) -> ModuleType:
    """The user's Python file ``head`` imported (once per content); ConfigError when it is not a file."""
    path = Path(head).expanduser().resolve()
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(f"file {head!r} {what} (resolved to {str(path)!r}); allowed: {PREFIX_HELP}")
    return _import(path, head)


def _callables(module: ModuleType) -> list[str]:
    """Public functions and classes defined in the module itself (not imported into it)."""
    return sorted(name for name, value in vars(module).items()
                  if not name.startswith("_") and callable(value)
                  and getattr(value, "__module__", None) == module.__name__)


def _call_kwargs(factory, spec: str, options: dict, build_args: dict) -> dict:
    """Options plus the build arguments the factory's signature accepts; ConfigError for unknown options."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins without a signature: pass the options only
        return dict(options)
    named = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for key in options:
        if key not in named and not var_kw:
            allowed = [n for n in named if n not in _BUILD_ARGS]
            raise ConfigError(f"unknown option {key!r} for factory {spec!r}; allowed: {', '.join(allowed) or 'none'}")
    kwargs = {k: v for k, v in build_args.items() if k in named or var_kw}
    kwargs.update(options)
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as exc:
        given = ", ".join(sorted(kwargs)) or "no arguments"
        raise ConfigError(f"factory {spec!r} cannot be called with {given}: {exc}; pass options as --arg key=value") from None
    return kwargs


def create_from_file(spec: str, num_classes: int, in_channels: int, image_size: int,
                     options: dict) -> tuple[nn.Module, str]:
    """Import the spec's file, call its factory; returns (model, spec with the absolute file path)."""
    head, name = split(spec)
    path = Path(head).expanduser().resolve()
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(f"model file {head!r} {what} (resolved to {str(path)!r}); allowed: {PREFIX_HELP}")
    module = _import(path, head)
    if not hasattr(module, name):
        found = ", ".join(_callables(module)) or "no public functions or classes"
        raise ConfigError(f"model file {head!r} has no factory {name!r}; it defines: {found}")
    factory = getattr(module, name)
    if not callable(factory):
        raise ConfigError(f"{name!r} in model file {head!r} is a {type(factory).__name__}, not a callable; "
                          f"callables there: {', '.join(_callables(module)) or 'none'}")
    build_args = {"num_classes": num_classes, "in_channels": in_channels, "image_size": image_size}
    kwargs = _call_kwargs(factory, spec, options, build_args)
    try:
        model = factory(**kwargs)
    except Exception as exc:  # noqa: BLE001  (any failure of user code becomes one line)
        line = _line_in(exc, path)
        raise ModelError(f"factory {spec!r} failed: {first_line(exc)}{f' (line {line})' if line else ''}") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"factory {spec!r} returned a {type(model).__name__}, not a torch.nn.Module")
    return unwrapped(model), f"{path}:{name}"  # a YOLO object's network: built, saved and rebuilt the same way
