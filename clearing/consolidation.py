"""Group consolidation: the operator entities' trial balance with intercompany eliminations.

The group is every company with the operator role. As of a date, each account's balance is
summed across the group. Then what the group owes itself is eliminated:

- positions between group members: ``Assets:Ecosystem:DueFrom`` and
  ``Liabilities:Ecosystem:DueTo`` postings whose counterparty is another member (what A
  shows as due from B, B shows as due to A);
- intercompany revenue and cost: ``Income:Intercompany`` and ``Expenses:Intercompany``,
  which by the chart hold only transfer prices between operator entities.

Both sides of each elimination are shown. When they do not cancel (an intercompany entry
booked by one entity only, different amounts, another date), the difference is reported per
pair and currency, not hidden: the consolidated balance then does not balance by exactly that
amount.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from typing import NamedTuple

from sqlalchemy import func, select

from clearing.statements import POSITION_ACCOUNTS
from ledger.database import Database
from ledger.queries import balances_as_of
from ledger.schema import accounts, companies, postings

INTERCOMPANY_ACCOUNTS = ("Income:Intercompany", "Expenses:Intercompany")


class ConsolidatedLine(NamedTuple):
    account: str
    currency: str
    group_minor: int  # summed across the group
    eliminated_minor: int  # taken out as intercompany
    consolidated_minor: int


class Elimination(NamedTuple):
    company: str
    counterparty: str | None  # None: intercompany revenue or cost (no counterparty needed)
    account: str
    currency: str
    amount_minor: int  # the balance eliminated


class Difference(NamedTuple):
    what: str  # "A/B" for a pair's positions, "intercompany P&L" for revenue and cost
    currency: str
    amount_minor: int  # what does not cancel


class Consolidation(NamedTuple):
    as_of: dt.date | None
    group: list[str]
    lines: list[ConsolidatedLine]
    eliminations: list[Elimination]
    differences: list[Difference]


def consolidate(db: Database, *, as_of: dt.date | None = None) -> Consolidation:
    with db.read() as conn:
        group = {code: cid for cid, code, roles in conn.execute(select(companies.c.id, companies.c.code, companies.c.roles))
                 if "operator" in (roles or [])}
        balances = [line for cid in group.values() for line in balances_as_of(conn, as_of, company_id=cid)]
        p, a = postings.c, accounts.c
        query = (select(companies.c.code, a.name, p.currency, p.dimensions, func.sum(p.amount_minor))
                 .join(accounts, a.id == p.account_id).join(companies, companies.c.id == a.company_id)
                 .where(companies.c.code.in_(sorted(group)), a.name.in_(POSITION_ACCOUNTS))
                 .group_by(companies.c.code, a.name, p.currency, p.dimensions))
        if as_of is not None:
            query = query.where(p.effective_date <= as_of)
        positions: dict[tuple[str, str, str, str], int] = defaultdict(int)
        for code, account, currency, dimensions, amount in conn.execute(query):
            counterparty = json.loads(dimensions).get("counterparty") if dimensions else None
            if counterparty in group and counterparty != code:
                positions[(code, counterparty, account, currency)] += int(amount)
    eliminations = [Elimination(code, counterparty, account, currency, amount)
                    for (code, counterparty, account, currency), amount in sorted(positions.items()) if amount]
    eliminations += [Elimination(line.company, None, line.account, line.currency, line.balance_minor)
                     for line in sorted(balances, key=lambda b: (b.company, b.account, b.currency))
                     if line.account in INTERCOMPANY_ACCOUNTS and line.balance_minor]
    return Consolidation(as_of, sorted(group), _lines(balances, eliminations), eliminations, _differences(eliminations))


def _lines(balances, eliminations: list[Elimination]) -> list[ConsolidatedLine]:
    summed: dict[tuple[str, str], int] = defaultdict(int)
    for line in balances:
        summed[(line.account, line.currency)] += line.balance_minor
    taken: dict[tuple[str, str], int] = defaultdict(int)
    for item in eliminations:
        taken[(item.account, item.currency)] += item.amount_minor
    return [ConsolidatedLine(account, currency, amount, taken[(account, currency)], amount - taken[(account, currency)])
            for (account, currency), amount in sorted(summed.items())
            if amount or taken[(account, currency)]]


def _differences(eliminations: list[Elimination]) -> list[Difference]:
    pairs: dict[tuple[str, str], int] = defaultdict(int)
    for item in eliminations:
        if item.counterparty is None:
            pairs[("intercompany P&L", item.currency)] += item.amount_minor
        else:
            pairs[("/".join(sorted((item.company, item.counterparty))), item.currency)] += item.amount_minor
    return [Difference(what, currency, amount) for (what, currency), amount in sorted(pairs.items()) if amount]
