"""Generator registry: one decorator registers a generator class with its frozen config dataclass.

    @register("my_task", MyConfig)
    class MyTask(Generator): ...

Configs are built from plain dicts (TOML tables, CLI options) by `build_config`, which rejects unknown keys with a
did-you-mean and coerces CLI strings to the declared field types, so every entry point validates the same way.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import math
import os
import types
import typing
from typing import Any

from .errors import ConfigError


class Registry:
    """Name -> class, each class paired with its frozen config dataclass. Used for generators and for models.
    `builtins` names the modules that register the built-in classes: imported on the first lookup, so that importing
    the registry (the project's base) loads no task."""

    def __init__(self, kind: str, builtins: tuple[str, ...] = ()):
        self.kind = kind
        self.classes: dict[str, type] = {}
        self._builtins, self._loaded = builtins, not builtins

    def _load_builtins(self) -> None:
        if not self._loaded:
            self._loaded = True  # first: their @register decorators run while they import
            for module in self._builtins:
                importlib.import_module(module)

    def register(self, name: str, config: type):
        """Class decorator: register a class under `name` with its frozen config dataclass."""
        if not (dataclasses.is_dataclass(config) and config.__dataclass_params__.frozen):
            raise TypeError(f"config of {self.kind} {name!r} must be a frozen dataclass")

        def wrap(cls):
            if name in self.classes and self.classes[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is already registered by {self.classes[name].__module__}")
            cls.name, cls.Config = name, config
            self.classes[name] = cls
            return cls

        return wrap

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted(self.classes)

    def get(self, name: str) -> type:
        self._load_builtins()
        if name not in self.classes and ":" in name:
            return self.from_path(name)
        if name not in self.classes:
            raise ConfigError(
                f"unknown {self.kind} {name!r}{did_you_mean(name, self.classes)}; valid: {', '.join(self.names())}"
            )
        return self.classes[name]

    def from_path(self, path: str) -> type:
        """A class named as `package.module:Class`: importing the module runs its @register decorator."""
        module_name, _, attr = path.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as e:  # a plugin that does not import is bad input, whatever it raised
            raise ConfigError(f"{self.kind} plugin {path!r} does not import: {type(e).__name__}: {e}") from None
        cls = getattr(module, attr, None)
        if cls is None:
            raise ConfigError(f"module {module_name!r} has no {attr!r} (from the {self.kind} plugin path {path!r})")
        if self.classes.get(getattr(cls, "name", None)) is not cls:
            raise ConfigError(f"{path!r} is not a registered {self.kind}: decorate it with @register(name, Config)")
        return cls

    def listing(self, as_options: bool = False) -> list[str]:
        """`testbed list`: every registered name, its class, the first line of its docstring, and each config field
        with its type, default and help (as a command-line option: --n-input, or as a spec key: n_input)."""
        import json
        import typing

        lines = []
        for name in self.names():
            cls = self.get(name)
            lines.append(f"{name}  ({cls.__module__}.{cls.__qualname__})")
            doc = (cls.__doc__ or "").strip().splitlines()
            if doc:
                lines.append(f"  {doc[0]}")
            defaults, hints = to_dict(cls.Config()), typing.get_type_hints(cls.Config)
            for f in fields(cls.Config):
                key = "--" + f.name.replace("_", "-") if as_options else f.name
                lines.append(f"  {key:<18} {type_name(hints[f.name]):<12} {json.dumps(defaults[f.name]):<16} "
                             f"{field_help(f)}")
            lines.append("")
        return lines

    def config(self, name: str, values: dict[str, Any] | None = None):
        return build_config(self.get(name).Config, values or {}, where=f"{self.kind} {name!r}")


TASKS = ("cellular_automata", "facts", "group_words", "kv_segments", "mad", "mqar", "zipf_memory")
GENERATORS = Registry("generator", tuple(f"generators.{m}" for m in TASKS))
register = GENERATORS.register
names = GENERATORS.names
get = GENERATORS.get


def make(name: str, config: dict[str, Any] | None = None):
    """Instantiate a registered generator from a plain dict of config values."""
    return get(name)(GENERATORS.config(name, config))


PLUGIN_GROUP = "testbed.plugins"  # entry-point group: installed packages name the modules that register their classes


def load_plugins() -> None:
    """Import the plugin modules of installed packages (entry-point group `testbed.plugins`) and those named in
    $TESTBED_PLUGINS (comma-separated), so that their @register decorators run."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            ep.load()
        except Exception as e:
            raise ConfigError(f"plugin {ep.name!r} ({ep.value}) of entry-point group {PLUGIN_GROUP} does not import: "
                              f"{type(e).__name__}: {e}") from None
    for module in filter(None, (m.strip() for m in os.environ.get("TESTBED_PLUGINS", "").split(","))):
        try:
            importlib.import_module(module)
        except Exception as e:
            raise ConfigError(f"cannot import plugin module {module!r} from $TESTBED_PLUGINS: {e}") from None


HASH_MODES = ("always", "if_set", "never")


def option(default, help: str, hash: str = "always"):
    """A config field with a default and a one-line help text (shown by `testbed list`).

    `hash` says how the field enters a run's id: always; if_set (an option added after runs were published: its
    default is left out, so that the runs made before it existed keep their ids); never (an execution detail, such
    as a thread count, that does not change what is computed)."""
    if hash not in HASH_MODES:
        raise ValueError(f"hash must be one of {HASH_MODES}, got {hash!r}")
    return dataclasses.field(default=default, metadata={"help": help, "hash": hash})


def hash_mode(f: dataclasses.Field) -> str:
    return f.metadata.get("hash", "always")


def to_dict(config) -> dict[str, Any]:
    """A config as plain JSON/TOML-friendly values (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def fields(config_cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(config_cls) if f.init]


def field_help(f: dataclasses.Field) -> str:
    return f.metadata.get("help", "")


def type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is tuple:
        return f"list[{type_name(typing.get_args(tp)[0])}]"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


@functools.cache
def _type_hints(config_cls: type) -> dict:
    """A config class's field types, resolved once (a sweep builds thousands of configs)."""
    return typing.get_type_hints(config_cls)


def build_config(config_cls: type, values: dict[str, Any], where: str = "config"):
    """Build a frozen config from a dict; unknown keys and ill-typed values raise ConfigError."""
    hints = _type_hints(config_cls)
    valid = {f.name for f in fields(config_cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in valid:
            raise ConfigError(
                f"unknown key {key!r} for {where}{did_you_mean(key, valid)}; valid keys: {', '.join(sorted(valid))}"
            )
        kwargs[key] = coerce(hints[key], value, f"{where}: {key}")
    try:
        return config_cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def coerce(tp, value, name: str):
    """Check `value` against type `tp`; strings (from the command line) are converted to the declared type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(arg, value, name)
            except ConfigError:
                pass
        raise ConfigError(f"{name} must be {type_name(tp)}, got {value!r}")
    if origin is tuple:
        (item,) = [a for a in typing.get_args(tp) if a is not Ellipsis][:1] or (Any,)
        if isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v] if value.strip() else []
        elif not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(coerce(item, v, name) for v in value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""), 0)
            except ValueError:
                pass
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        number = None
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ConfigError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(number):  # no config field means anything by nan or inf
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{name} must be a string, got {value!r}")
    return value
