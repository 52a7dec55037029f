"""The one exception type for bad user input: the CLI turns it into a one-line message and exit code 2."""


class ConfigError(ValueError):
    """Invalid user input (unknown name, bad key, impossible size, ...). The message is one actionable line."""
