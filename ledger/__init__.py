"""The multi-company double-entry journal that every other part of ecoledger posts into.

Layers, outermost first:

* services (one function per use case, each owning its transaction): ``companies``,
  ``posting``, ``reversal``, ``periods``, ``reports``, ``verify``, ``export``;
* pure domain code with no I/O: ``records``, ``money``, ``interchange``, ``hashing``,
  ``rules`` (validation as small functions returning problems as values);
* storage: ``schema`` (SQLAlchemy Core tables and triggers) and ``database``
  (engine, write lock, bulk writer).
"""
