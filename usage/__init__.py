"""Usage: import, mediation, rating and posting of usage lines (pure domain code and its
service functions; no Flask or Celery)."""
