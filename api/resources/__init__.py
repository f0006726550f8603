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
)


def register(api) -> None:
    for module in (health, companies, partners, contracts, usage, billing, clearing, revrec, ledgerwide, entries, jobs, access):
        api.register_blueprint(module.blp)
