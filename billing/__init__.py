"""Billing: billing runs and invoices (pure domain code and its service functions; no Flask
or Celery)."""
