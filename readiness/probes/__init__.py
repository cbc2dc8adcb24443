"""The automated checks, one module per kind; importing this package registers them all."""

from . import deploy, http_probes, migration, network, settings  # noqa: F401
