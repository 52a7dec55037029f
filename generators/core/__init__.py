"""The project's base, apart from the tasks: the one error type for bad input, the option registry (frozen configs
built and checked from plain tables), atomic I/O and the interchange format, and counter-based hashing. Tasks
(generators/) and testbed both import it; importing it loads no task."""

from . import io, registry, rng  # noqa: F401
from .errors import ConfigError

__all__ = ["ConfigError", "io", "registry", "rng"]
