"""Command-line flags made from a method's declared options (its pydantic ``Options``): one flag per field, named
after it (``per_layer`` -> ``--per-layer``), typed after it, with its description and default as help.

A flag left out passes nothing, so the method's own default applies (and a run's identity is the same with or
without the flag at its default). Values are checked by the method's options, the one place they are checked:
lists are comma-separated (``--criteria magnitude,product``), a mapping is YAML (``--range-rules '{...}'``),
choices are listed in the help and refused by the options in one line.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Literal, Optional, Union

import typer
import yaml

from edgeprune.errors import ConfigError

PREFIX = "option__"  # keeps a method's option apart from the command's own parameters


def _plain(annotation):
    """``annotation`` without ``None`` in a union (``list[str] | None`` -> ``list[str]``)."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else Union[tuple(args)]
    return annotation


def _kind(annotation) -> str:
    plain = _plain(annotation)
    origin = typing.get_origin(plain)
    if plain in (bool, int, float):
        return plain.__name__
    if origin in (list, tuple):
        return "list"
    if plain is dict or origin is dict:
        return "dict"
    return "literal" if origin is Literal else "text"


def _choices(annotation) -> tuple:
    plain = _plain(annotation)
    if typing.get_origin(plain) in (list, tuple):
        plain = typing.get_args(plain)[0]
    return typing.get_args(plain) if typing.get_origin(plain) is Literal else ()


def _shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "none"
    return "{}" if value == {} else str(value)


def help_of(field) -> str:
    """The field's description, its choices and its default, as one help text."""
    text = (field.description or "").rstrip(".")
    choices = _choices(field.annotation)
    if len(choices) > 1:  # a single allowed value (granularity) is told by the description
        text += f"; one of: {', '.join(map(str, choices))}"
    if _kind(field.annotation) == "list":
        text += " (comma-separated)"
    default = field.get_default(call_default_factory=True)
    return f"{text}. Default: {_shown(default)}." if default is not None else f"{text}."


_TYPES = {"bool": Optional[bool], "int": Optional[int], "float": Optional[float]}


def parameters(method_cls, *, rename: dict | None = None, exclude=()) -> list[inspect.Parameter]:
    """Keyword parameters (typer options) for the options of ``method_cls``; ``rename``: option -> flag name for
    the old spellings of an alias (``synflow_rounds`` -> ``rounds``); ``exclude``: options an alias sets itself."""
    rename = rename or {}
    params = []
    for name, field in method_cls.Options.model_fields.items():
        if name in exclude:
            continue
        flag = "--" + rename.get(name, name).replace("_", "-")
        kind = _kind(field.annotation)
        decl = f"{flag}/--no-{flag[2:]}" if kind == "bool" else flag
        option = typer.Option(None, decl, help=help_of(field), rich_help_panel=f"Options of {method_cls.name}",
                              show_default=False)
        params.append(inspect.Parameter(PREFIX + name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=_TYPES.get(kind, Optional[str])))
    return params


def _value(text: str, kind: str, choices: tuple):
    if kind == "list":  # items of a list of choices stay text (YAML would read "no" as False)
        return [part.strip() if choices else _scalar(part.strip()) for part in text.split(",") if part.strip()]
    return text if kind == "literal" else _scalar(text)


def _scalar(text: str):
    """``text`` read as YAML (``8`` -> 8, ``{a: 1}`` -> a mapping); as it is if it is no YAML (the options name it)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def given(method_cls, values: dict, options: dict | None = None) -> dict:
    """The options the flags in ``values`` (the command's keyword arguments) set, merged with ``-O`` ``options``;
    the same option given both ways is refused."""
    merged = dict(options or {})
    fields = method_cls.Options.model_fields
    for key, value in values.items():
        if not key.startswith(PREFIX) or value is None:
            continue
        name = key[len(PREFIX):]
        if name in merged:
            raise ConfigError(f"option {name!r} given twice (a flag and -O {name}=...); give it once")
        annotation = fields[name].annotation
        merged[name] = _value(value, _kind(annotation), _choices(annotation)) if isinstance(value, str) else value
    return merged


def command(run, base, params: list[inspect.Parameter], doc: str):
    """A function typer reads as a command: ``base``'s parameters and ``params``, calling ``run(**values)``."""
    def cmd(**values):
        return run(**values)

    signature, hints = inspect.signature(base), typing.get_type_hints(base)  # real types, not the module's strings
    every = [*(p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints[p.name]) for p in signature.parameters.values()),
             *params]
    cmd.__signature__ = signature.replace(parameters=every, return_annotation=inspect.Signature.empty)
    cmd.__annotations__ = {p.name: p.annotation for p in every}
    cmd.__doc__ = doc
    cmd.__module__ = base.__module__
    return cmd
