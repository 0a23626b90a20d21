"""segsync: contacts, tags, consent and segments kept consistent across marketing platforms."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("segsync")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
