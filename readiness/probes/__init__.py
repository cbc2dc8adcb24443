"""The automated checks, one module per kind; importing this package registers them all."""

from . import deploy, migration, network, requests, settings  # noqa: F401
