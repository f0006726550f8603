"""The API's resources, one blueprint each."""

from __future__ import annotations

from api.resources import (
    access,
    billing,
    clearing,
    companies,
    contracts,
    entries,
    health,
    jobs,
    ledgerwide,
    partners,
    revrec,
    usage,
    webhooks,
)


def register(api) -> None:
    for module in (health, companies, partners, contracts, usage, billing, clearing, revrec, webhooks, ledgerwide, entries,
                   jobs, access):
        api.register_blueprint(module.blp)
