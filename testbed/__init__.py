"""testbed: a synthetic reasoning testbed with small, controllable models."""

__version__ = "0.1.0"
