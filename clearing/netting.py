"""Multilateral netting through a netting centre.

A partner that allows netting (its settlement terms) may hold positions with several of the
operator's entities: its share from one, a transfer it owes another. A netting run for a
cycle (a month) moves each such position, as it stands at the cycle's end, to the netting
centre (an operator entity acting as central counterparty), per currency. The centre takes
over what the entity owed the partner (or was owed by it), and the entity now owes the centre
(or is owed by it). After the run, each partner has one position per currency with the
centre: one amount to pay or to receive. The centre's positions with the entities settle
within the group.

Each move is one netting entry (source ``netting``) with mirror postings in the three books
(partner, entity, centre), each balanced. What open disputes withhold stays with the entity:
the partner's postings from usage lines under an open dispute (posted per line) are left
out of the amount moved until the dispute is resolved. Running a cycle again moves nothing
new. Positions in different currencies are netted per currency; conversion at rates fixed
for the cycle is not built yet (docs/clearing.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from typing import NamedTuple

from sqlalchemy import Connection, func, insert, select

from billing.schema import usage_disputes
from clearing.run import posting_day
from clearing.schema import netting_items
from clearing.statements import DUE_FROM, DUE_TO, POSITION_ACCOUNTS, with_counterparty
from ledger import audit
from ledger.database import Database
from ledger.periods import parse_period
from ledger.posting import JournalWriter, audit_post, post_single
from ledger.records import E_INVALID, E_UNKNOWN_COMPANY, EntryDraft, LedgerError, PostingDraft, Problem, show
from ledger.schema import accounts, companies, postings
from partners.schema import partners
from usage.schema import usage_lines

SOURCE_TYPE = "netting"


class NettingMove(NamedTuple):
    partner: str
    counterparty: str  # the entity the position was with
    currency: str
    amount_minor: int  # > 0: the entity owed the partner; now the centre does
    withheld_minor: int
    entry: str


class NetPosition(NamedTuple):
    participant: str
    currency: str
    amount_minor: int  # > 0: the centre pays the participant; < 0: the participant pays the centre


@dataclasses.dataclass
class NettingReport:
    cycle: str
    centre: str
    moves: list[NettingMove] = dataclasses.field(default_factory=list)
    positions: list[NetPosition] = dataclasses.field(default_factory=list)  # each partner's, with the centre


def run_netting(db: Database, cycle: str, *, centre: str, actor: str) -> NettingReport:
    _, end = parse_period(cycle)
    report = NettingReport(cycle, centre)
    with db.write() as conn:
        operators = _operators(conn)
        if centre not in operators:
            raise LedgerError(Problem(E_INVALID if centre in _codes(conn) else E_UNKNOWN_COMPANY, "centre",
                                      f"{show(centre)} is not an operator entity; a netting centre must be one"))
        writer = JournalWriter(conn)
        participants = _netting_partners(conn, centre)
        for partner in participants:
            for entity in sorted(operators):
                if entity in (centre, partner):
                    continue
                for currency, amount, withheld in _positions(conn, partner, entity, end):
                    movable = amount - withheld
                    if movable:
                        report.moves.append(_move(conn, writer, cycle, end, partner, entity, centre, currency,
                                                  movable, withheld, actor))
        report.positions = [NetPosition(partner, currency, amount)
                            for partner in participants
                            for currency, amount, _ in _positions(conn, partner, centre, end) if amount]
        if writer.first_seq is not None:
            audit_post(conn, actor, writer.last_seq - writer.first_seq + 1, writer.first_seq, writer.last_seq)
        audit.record(conn, actor=actor, action="clearing.netting", target=f"{cycle} via {centre}",
                     details={"moves": len(report.moves)})
    return report


def _codes(conn: Connection) -> set[str]:
    return set(conn.execute(select(companies.c.code)).scalars())


def _operators(conn: Connection) -> set[str]:
    return {code for code, roles in conn.execute(select(companies.c.code, companies.c.roles))
            if "operator" in (roles or [])}


def _netting_partners(conn: Connection, centre: str) -> list[str]:
    return [code for code in conn.execute(
        select(companies.c.code).join(partners, partners.c.company_id == companies.c.id)
        .where(partners.c.netting_allowed.is_(True)).order_by(companies.c.code)).scalars() if code != centre]


def _positions(conn: Connection, partner: str, counterparty: str, end: dt.date) -> list[tuple[str, int, int]]:
    """(currency, position, withheld) of the partner with ``counterparty`` at ``end``: the
    position from its books; withheld, the part from usage lines under an open dispute."""
    p, a = postings.c, accounts.c
    base = (select(p.currency, func.sum(p.amount_minor)).join(accounts, a.id == p.account_id)
            .join(companies, companies.c.id == a.company_id)
            .where(companies.c.code == partner, a.name.in_(POSITION_ACCOUNTS), with_counterparty(counterparty),
                   p.effective_date <= end).group_by(p.currency))
    totals = {currency: int(amount) for currency, amount in conn.execute(base)}
    disputed = (select(usage_lines.c.entry_seq).join(usage_disputes, usage_disputes.c.line_id == usage_lines.c.id)
                .where(usage_disputes.c.status == "open", usage_lines.c.entry_seq.is_not(None)))
    alone = (select(usage_lines.c.entry_seq).group_by(usage_lines.c.entry_seq).having(func.count() == 1))
    withheld = defaultdict(int)
    for currency, amount in conn.execute(base.where(p.entry_id.in_(disputed), p.entry_id.in_(alone))):
        withheld[currency] += int(amount)
    return [(currency, totals[currency], withheld[currency]) for currency in sorted(totals)]


def _move(conn: Connection, writer: JournalWriter, cycle: str, end: dt.date, partner: str, entity: str, centre: str,
          currency: str, amount: int, withheld: int, actor: str) -> NettingMove:
    """Novate ``amount`` of the partner's position with ``entity`` to ``centre``."""
    if amount > 0:  # the entity owed the partner: now the centre does, and the entity owes the centre
        lines = [(partner, DUE_FROM, -amount, entity), (partner, DUE_FROM, amount, centre),
                 (entity, DUE_TO, amount, partner), (entity, DUE_TO, -amount, centre),
                 (centre, DUE_FROM, amount, entity), (centre, DUE_TO, -amount, partner)]
    else:  # the partner owed the entity: now it owes the centre, and the centre owes the entity
        owed = -amount
        lines = [(partner, DUE_TO, owed, entity), (partner, DUE_TO, -owed, centre),
                 (entity, DUE_FROM, -owed, partner), (entity, DUE_FROM, owed, centre),
                 (centre, DUE_TO, -owed, entity), (centre, DUE_FROM, owed, partner)]
    count = conn.execute(select(func.count()).select_from(netting_items).where(netting_items.c.cycle == cycle)).scalar()
    external_id = f"netting:{cycle}:{partner}:{entity}:{currency}:{count + 1}"
    draft = EntryDraft(external_id, posting_day(conn, (partner, entity, centre), end),
                       tuple(PostingDraft(company, account, value, currency, (("counterparty", other),))
                             for company, account, value, other in lines),
                       f"Netting {cycle}: {partner}'s position with {entity} moved to {centre}", SOURCE_TYPE, cycle,
                       (("centre", centre), ("cycle", cycle)))
    entry_seq = post_single(writer, draft, f"netting of {partner} with {entity}")
    ids = dict(conn.execute(select(companies.c.code, companies.c.id)
                            .where(companies.c.code.in_((partner, entity, centre)))).all())
    conn.execute(insert(netting_items).values(
        cycle=cycle, company_id=ids[partner], counterparty_id=ids[entity], centre_id=ids[centre], currency=currency,
        amount_minor=amount, withheld_minor=withheld, entry_seq=entry_seq, recorded_at=dt.datetime.now(dt.UTC),
        recorded_by=actor[:200]))
    return NettingMove(partner, entity, currency, amount, withheld, external_id)

