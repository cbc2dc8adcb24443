"""Signals ``scalekit_auth`` sends.

``token_requested``: sent by ``scalekit_auth.client.token_request()`` just before it posts to
Scalekit's token endpoint, in the thread that makes the request, with ``grant_type`` (the form's
grant, e.g. ``"authorization_code"`` or ``"refresh_token"``) and ``sender=None``. It carries no
code, token or secret. A receiver that raises stops the request, so keep receivers trivial
(the readiness forged-state probe counts code exchanges with one).
"""

from __future__ import annotations

from django.dispatch import Signal

token_requested = Signal()
