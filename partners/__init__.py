"""Partner onboarding, agreements and contracts (issue 4). Not built yet; companies and
their charts of accounts are ``ledger.companies`` and ``config/charts``."""
