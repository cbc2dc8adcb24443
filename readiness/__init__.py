"""Production-readiness and migration checklists in the Django admin, verified where possible.

- The checklists (Scalekit's production-readiness sections and the five migration phases) are
  data: ``catalogue.py``, loaded by the data migration and brought up to date with
  ``manage.py readiness_sync`` (sign-offs, owners, evidence and history are kept).
- 60-odd automated checks ("probes", ``probes/``) prove what the running project can prove:
  settings (S, also shown by ``manage.py check --deploy``), Django's deploy checks (D),
  in-process requests through the middleware (P), network probes of Scalekit (N) and stored
  records (R). Everything else is signed off by a person, with evidence, in the admin.
- Run them from the admin dashboard (``/admin/readiness/checklistitem/dashboard/``), with
  ``manage.py readiness_check [--json] [--no-network]`` (exit 1 on a failing blocker), or on a
  schedule with the Celery task ``readiness.run_scheduled_checks``.

Settings live in one ``READINESS`` dict, documented in ``conf.py``.
"""
