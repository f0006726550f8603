"""Every table of ecoledger, for migrations and schema checks: importing a capability's
schema module registers its tables on the one shared MetaData."""

import access.schema  # noqa: F401  (registers API keys and idempotency keys)
import billing.schema  # noqa: F401  (registers billing runs, invoices and their lines)
import clearing.schema  # noqa: F401  (registers settlement statements and payments)
import contracts.schema  # noqa: F401  (registers customers, contracts and contract events)
import jobs.schema  # noqa: F401  (registers the jobs table)
import ledger.schema  # noqa: F401  (registers the ledger tables)
import partners.schema  # noqa: F401  (registers partners and agreements)
import revrec.schema  # noqa: F401  (registers the close runs)
import usage.schema  # noqa: F401  (registers usage imports, lines, rejects, counters, alerts)
from ledger.schema import metadata

__all__ = ["metadata"]
