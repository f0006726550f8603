"""Netting: multilateral through a netting centre, or bilateral.

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
new.

Per settlement currency: after the moves, a partner's position with the centre in another
currency than its settlement currency is converted into it at the rate fixed for the cycle
(clearing/fx.py), in a netting entry through ``Equity:Conversions`` in both books (each
currency balanced on its own). Without a rate the position stays in its currency, and the
run says which rate is missing. Each partner then has one amount per settlement currency.

Bilateral netting (no centre) offsets, per netting partner, operator entity and currency,
what the entity owes the partner (the partner's due-from) against what the partner owes the
entity (its due-to), so that the pair keeps one amount: one netting entry per offset with
mirror postings in both books. What disputes withhold is not offset. Items record the
entity as their centre.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import Connection, func, insert, select, update

from clearing.fx import convert, rates_of
from clearing.run import posting_day
from clearing.schema import netting_items
from clearing.statements import (
    DUE_FROM,
    DUE_TO,
    POSITION_ACCOUNTS,
    position_accounts,
    with_counterparty,
    withheld_items,
)
from ledger import audit
from ledger.database import Database
from ledger.periods import parse_period
from ledger.posting import JournalWriter, audit_post, post_single
from ledger.records import E_INVALID, E_UNKNOWN_COMPANY, EntryDraft, LedgerError, PostingDraft, Problem, show
from ledger.schema import accounts, companies, journal_entries, postings
from partners.schema import partners
from partners.schemas import canonical_decimal

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
    amount_minor: int  # > 0: the counterparty pays the participant; < 0: the participant pays it
    counterparty: str | None = None  # the centre, or (bilateral) the entity


MULTILATERAL, BILATERAL = "multilateral", "bilateral"
CONVERSIONS = "Equity:Conversions"


class Conversion(NamedTuple):
    partner: str
    currency: str
    amount_minor: int  # the position converted (> 0: the centre owed it to the partner)
    to_currency: str
    converted_minor: int
    rate: Decimal
    rate_source: str
    entry: str


class Unconverted(NamedTuple):
    partner: str
    currency: str
    to_currency: str  # the partner's settlement currency: no rate for the cycle


@dataclasses.dataclass
class NettingReport:
    cycle: str
    centre: str | None  # None: bilateral
    moves: list[NettingMove] = dataclasses.field(default_factory=list)
    positions: list[NetPosition] = dataclasses.field(default_factory=list)  # each partner's, with the centre
    mode: str = MULTILATERAL
    conversions: list[Conversion] = dataclasses.field(default_factory=list)
    unconverted: list[Unconverted] = dataclasses.field(default_factory=list)


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
        posted = writer.last_seq - writer.first_seq + 1 if writer.first_seq is not None else 0
        first, last = writer.first_seq, writer.last_seq
        converter = _convert_positions(conn, report, participants, end)
        if converter is not None and converter.first_seq is not None:
            posted += converter.last_seq - converter.first_seq + 1
            first, last = first or converter.first_seq, converter.last_seq
        report.positions = [NetPosition(partner, currency, amount, centre)
                            for partner in participants
                            for currency, amount, _ in _positions(conn, partner, centre, end) if amount]
        if posted:
            audit_post(conn, actor, posted, first, last)
        audit.record(conn, actor=actor, action="clearing.netting", target=f"{cycle} via {centre}",
                     details={"moves": len(report.moves)})
    return report


def _convert_positions(conn: Connection, report: NettingReport, participants: list[str], end: dt.date
                       ) -> JournalWriter | None:
    """Convert each partner's positions with the centre into its settlement currency at the
    cycle's rates (a writer of its own: the accounts it needs are made ready first)."""
    rates = rates_of(conn, report.cycle)
    settlement = dict(conn.execute(select(companies.c.code, partners.c.settlement_currency)
                                   .join(partners, partners.c.company_id == companies.c.id)).all())
    wanted = []
    for partner in participants:
        target = settlement[partner]
        for currency, amount, _ in _positions(conn, partner, report.centre, end):
            if currency == target or not amount:
                continue
            rate = rates.get((currency, target))
            if rate is None:
                report.unconverted.append(Unconverted(partner, currency, target))
            else:
                wanted.append((partner, currency, amount, target, rate))
    if not wanted:
        return None
    for partner, currency, _, target, _ in wanted:
        for company in (partner, report.centre):
            _ready(conn, company, CONVERSIONS, (currency, target), end)
            _ready(conn, company, DUE_FROM, (target,), end)
            _ready(conn, company, DUE_TO, (target,), end)
    writer = JournalWriter(conn)
    for partner, currency, amount, target, rate in wanted:
        report.conversions.append(_convert(conn, writer, report, end, partner, currency, amount, target, rate))
    return writer


def _ready(conn: Connection, company: str, name: str, currencies: tuple[str, ...], end: dt.date) -> None:
    """Make the company's account ``name`` exist and take ``currencies``: a conversion account
    is opened when first needed, and a position account learns the settlement currency."""
    row = conn.execute(select(accounts.c.id, accounts.c.currencies).join(companies, companies.c.id == accounts.c.company_id)
                       .where(companies.c.code == company, accounts.c.name == name)).first()
    if row is None:
        company_id, opened = conn.execute(
            select(companies.c.id, func.min(accounts.c.open_date)).join(accounts, accounts.c.company_id == companies.c.id)
            .where(companies.c.code == company).group_by(companies.c.id)).first()
        conn.execute(insert(accounts).values(
            company_id=company_id, name=name, type="equity", currencies=sorted(currencies), balance_constraint=None,
            open_date=min(opened, end), close_date=None, description="Currency conversions at netting rates"))
        return
    missing = set(currencies) - set(row.currencies)
    if missing:
        conn.execute(update(accounts).where(accounts.c.id == row.id).values(
            currencies=sorted(set(row.currencies) | missing)))


def _convert(conn: Connection, writer: JournalWriter, report: NettingReport, end: dt.date, partner: str,
             currency: str, amount: int, target: str, rate) -> Conversion:
    """Convert the partner's position with the centre in ``currency`` into ``target``."""
    centre = report.centre
    converted = convert(amount, currency, target, rate.rate)
    own, other = (DUE_FROM, DUE_TO) if amount > 0 else (DUE_TO, DUE_FROM)
    lines = [(partner, own, -amount, currency, centre), (partner, own, converted, target, centre),
             (partner, CONVERSIONS, amount, currency, None), (partner, CONVERSIONS, -converted, target, None),
             (centre, other, amount, currency, partner), (centre, other, -converted, target, partner),
             (centre, CONVERSIONS, -amount, currency, None), (centre, CONVERSIONS, converted, target, None)]
    prefix = f"netting:{report.cycle}:{partner}:fx:{currency}:{target}:"
    count = conn.execute(select(func.count()).select_from(journal_entries)
                         .where(journal_entries.c.external_id.startswith(prefix, autoescape=True))).scalar()
    external_id = f"{prefix}{count + 1}"
    draft = EntryDraft(external_id, posting_day(conn, (partner, centre), end),
                       tuple(PostingDraft(company, account, value, money, (("counterparty", who),) if who else ())
                             for company, account, value, money, who in lines),
                       f"Netting {report.cycle}: {partner}'s {currency} position with {centre} in {target} at "
                       f"{canonical_decimal(rate.rate)} ({rate.source}, {rate.rate_date})"[:500], SOURCE_TYPE,
                       report.cycle, (("centre", centre), ("cycle", report.cycle), ("fx_rate", canonical_decimal(rate.rate))))
    post_single(writer, draft, f"conversion of {partner}'s {currency} position")
    return Conversion(partner, currency, amount, target, converted, rate.rate, rate.source, external_id)


def run_bilateral_netting(db: Database, cycle: str, *, actor: str) -> NettingReport:
    """Offset each netting partner's due-from and due-to with each operator entity, per
    currency, as they stand at the cycle's end."""
    _, end = parse_period(cycle)
    report = NettingReport(cycle, None, mode=BILATERAL)
    with db.write() as conn:
        writer = JournalWriter(conn)
        operators = _operators(conn)
        for partner in _netting_partners(conn, None):
            for entity in sorted(operators - {partner}):
                for currency, owed_to_partner, owed_by_partner, withheld in _sides(conn, partner, entity, end):
                    offset = min(owed_to_partner - max(withheld, 0), owed_by_partner)
                    if offset > 0:
                        report.moves.append(_offset(conn, writer, cycle, end, partner, entity, currency, offset,
                                                    withheld, actor))
                report.positions += [NetPosition(partner, currency, amount, entity)
                                     for currency, amount, _ in _positions(conn, partner, entity, end) if amount]
        if writer.first_seq is not None:
            audit_post(conn, actor, writer.last_seq - writer.first_seq + 1, writer.first_seq, writer.last_seq)
        audit.record(conn, actor=actor, action="clearing.netting", target=f"{cycle} bilateral",
                     details={"moves": len(report.moves)})
    return report


def _sides(conn: Connection, partner: str, entity: str, end: dt.date) -> list[tuple[str, int, int, int]]:
    """(currency, what the entity owes the partner, what the partner owes the entity,
    withheld) at ``end``, from the partner's books."""
    p, a = postings.c, accounts.c
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for currency, name, amount in conn.execute(
            select(p.currency, a.name, func.sum(p.amount_minor)).join(accounts, a.id == p.account_id)
            .join(companies, companies.c.id == a.company_id)
            .where(companies.c.code == partner, a.name.in_(POSITION_ACCOUNTS), with_counterparty(entity),
                   p.effective_date <= end).group_by(p.currency, a.name)):
        found[currency][0 if name == DUE_FROM else 1] += int(amount)
    own = position_accounts(conn, partner)
    return [(currency, max(due_from, 0), max(-due_to, 0),
             sum(item.amount_minor for item in withheld_items(conn, own, entity, currency, end)))
            for currency, (due_from, due_to) in sorted(found.items())]


def _offset(conn: Connection, writer: JournalWriter, cycle: str, end: dt.date, partner: str, entity: str,
            currency: str, amount: int, withheld: int, actor: str) -> NettingMove:
    """Offset ``amount`` of what the entity owes the partner against what the partner owes it."""
    lines = [(partner, DUE_TO, amount, entity), (partner, DUE_FROM, -amount, entity),
             (entity, DUE_TO, amount, partner), (entity, DUE_FROM, -amount, partner)]
    return _record(conn, writer, cycle, end, partner, entity, entity, currency, amount, withheld, actor, lines,
                   f"Netting {cycle}: {partner}'s due-to and due-from with {entity} offset")


def _codes(conn: Connection) -> set[str]:
    return set(conn.execute(select(companies.c.code)).scalars())


def _operators(conn: Connection) -> set[str]:
    return {code for code, roles in conn.execute(select(companies.c.code, companies.c.roles))
            if "operator" in (roles or [])}


def _netting_partners(conn: Connection, centre: str | None) -> list[str]:
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
    own = position_accounts(conn, partner)
    return [(currency, totals[currency], sum(item.amount_minor for item in withheld_items(conn, own, counterparty,
                                                                                          currency, end)))
            for currency in sorted(totals)]


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
    return _record(conn, writer, cycle, end, partner, entity, centre, currency, amount, withheld, actor, lines,
                   f"Netting {cycle}: {partner}'s position with {entity} moved to {centre}")


def _record(conn: Connection, writer: JournalWriter, cycle: str, end: dt.date, partner: str, entity: str, centre: str,
            currency: str, amount: int, withheld: int, actor: str, lines: list[tuple], description: str) -> NettingMove:
    """Post one netting entry of ``lines`` and record its item."""
    count = conn.execute(select(func.count()).select_from(netting_items).where(netting_items.c.cycle == cycle)).scalar()
    external_id = f"netting:{cycle}:{partner}:{entity}:{currency}:{count + 1}"
    draft = EntryDraft(external_id, posting_day(conn, (partner, entity, centre), end),
                       tuple(PostingDraft(company, account, value, currency, (("counterparty", other),))
                             for company, account, value, other in lines),
                       description, SOURCE_TYPE, cycle, (("centre", centre), ("cycle", cycle)))
    entry_seq = post_single(writer, draft, f"netting of {partner} with {entity}")
    ids = dict(conn.execute(select(companies.c.code, companies.c.id)
                            .where(companies.c.code.in_((partner, entity, centre)))).all())
    conn.execute(insert(netting_items).values(
        cycle=cycle, company_id=ids[partner], counterparty_id=ids[entity], centre_id=ids[centre], currency=currency,
        amount_minor=amount, withheld_minor=withheld, entry_seq=entry_seq, recorded_at=dt.datetime.now(dt.UTC),
        recorded_by=actor[:200]))
    return NettingMove(partner, entity, currency, amount, withheld, external_id)

