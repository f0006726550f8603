"""Clearing engine and settlement statements (issue 6): partner positions per period,
netting, settlement entries and immutable statements. Not built yet; it posts through
``ledger.posting`` like every other capability."""
