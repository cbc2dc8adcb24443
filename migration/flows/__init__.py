"""How one record reaches Scalekit, one flow per kind.

A flow takes a claimed ``ImportRecord`` and a ``FlowContext`` and either marks the record
succeeded (with its Scalekit id and whether this run created it) or raises one of the gateway's
errors. Flows make no database queries: the batch loads what they need first and writes their
results back in bulk.
"""

from __future__ import annotations

from .organizations import import_organization
from .roles import import_role
from .users import import_user

FLOWS = {"role": import_role, "organization": import_organization, "user": import_user}

__all__ = ["FLOWS", "import_organization", "import_role", "import_user"]
