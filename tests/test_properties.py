"""Property-based: random sequences of valid and invalid batches, reversals and period closes,
judged by a simple in-memory reference model. After every step the ledger agrees with the
model on every entry's fate and every balance, at any date, and verify finds nothing."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections import defaultdict

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ecoledger.schema import metadata
from ledger import companies, periods, posting
from ledger.database import Database
from ledger.interchange import parse_entry
from ledger.money import format_amount
from ledger.records import LedgerError
from ledger.reports import trial_balance
from ledger.reversal import reversal_id_for, reverse_entry
from ledger.verify import verify

from conftest import BACKEND, fresh_pg_schema

FIRST_DAY = dt.date(2026, 9, 1)
DAYS = 90
OPEN_DAY = dt.date(2026, 9, 1)

# company -> account -> (currencies, constraint)
CHART = {
    "AA": {
        "Assets:Bank": ({"EUR", "USD"}, None),
        "Assets:Receivables:Unbilled": ({"EUR", "USD"}, "non_negative"),
        "Liabilities:CustomerCredits": ({"EUR", "USD"}, "non_positive"),
        "Income:Usage": ({"EUR", "USD"}, None),
    },
    "BB": {
        "Assets:Bank": ({"EUR"}, None),
        "Income:Ecosystem": ({"EUR"}, None),
    },
}


def month_end(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


class Model:
    """The reference: plain lists and dicts, brute force, obviously right."""

    def __init__(self) -> None:
        self.postings: list[tuple[str, str, str, dt.date, int]] = []  # company, account, currency, day, amount
        self.content: dict[str, tuple] = {}
        self.dates: dict[str, dt.date] = {}
        self.reversed: set[str] = set()
        self.reversals: set[str] = set()
        self.closed_through: dict[str, dt.date] = {}

    def copy(self) -> Model:
        other = Model()
        other.postings = list(self.postings)
        other.content = dict(self.content)
        other.dates = dict(self.dates)
        other.reversed = set(self.reversed)
        other.reversals = set(self.reversals)
        other.closed_through = dict(self.closed_through)
        return other

    def balances(self, as_of: dt.date | None = None) -> dict[tuple[str, str, str], int]:
        result: dict[tuple[str, str, str], int] = defaultdict(int)
        for company, account, currency, day, amount in self.postings:
            if as_of is None or day <= as_of:
                result[(company, account, currency)] += amount
        return dict(result)

    def judge(self, lines: tuple, day: dt.date) -> bool:
        """Would an entry with these postings be accepted on top of the current state?"""
        sums: dict[tuple[str, str], int] = defaultdict(int)
        for company, account, currency, amount in lines:
            known = CHART.get(company, {}).get(account)
            if known is None or currency not in known[0] or day < OPEN_DAY:
                return False
            if day <= self.closed_through.get(company, dt.date.min):
                return False
            sums[(company, currency)] += amount
        if any(sums.values()):
            return False
        after = self.postings + [(c, a, cur, day, amt) for c, a, cur, amt in lines]
        for company, account, currency, _ in lines:
            constraint = CHART[company][account][1]
            if constraint is None:
                continue
            days = sorted({d for c, a, cur, d, _ in after if (c, a, cur) == (company, account, currency)})
            for checkpoint in days:
                total = sum(amt for c, a, cur, d, amt in after if (c, a, cur) == (company, account, currency) and d <= checkpoint)
                if (constraint == "non_negative" and total < 0) or (constraint == "non_positive" and total > 0):
                    return False
        return True

    def apply(self, entry_id: str, lines: tuple, day: dt.date) -> None:
        self.postings += [(c, a, cur, day, amt) for c, a, cur, amt in lines]
        self.content[entry_id] = (day, lines)
        self.dates[entry_id] = day


accounts_of = st.sampled_from([(c, a) for c in CHART for a in CHART[c]] + [("AA", "Assets:Nope"), ("CC", "Assets:Bank")])
days = st.integers(min_value=-3, max_value=DAYS - 1).map(lambda n: FIRST_DAY + dt.timedelta(days=n))


@st.composite
def entries(draw, ids=st.sampled_from([f"e{i}" for i in range(12)])):
    """Mostly balanced entries built from debit/credit pairs, sometimes subtly wrong."""
    lines = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        company = draw(st.sampled_from(sorted(CHART)))
        currency = draw(st.sampled_from(["EUR", "USD"]) if company == "AA" else st.just("EUR"))
        amount = draw(st.integers(min_value=1, max_value=50_000))
        debit, credit = draw(st.lists(st.sampled_from(sorted(CHART[company])), min_size=2, max_size=2, unique=True))
        lines += [(company, debit, currency, amount), (company, credit, currency, -amount)]
    flaw = draw(st.sampled_from(["none"] * 6 + ["unbalanced", "account", "currency"]))
    if flaw == "unbalanced":
        company, account, currency, amount = lines[0]
        lines[0] = (company, account, currency, amount + draw(st.integers(min_value=1, max_value=99)))
    elif flaw == "account":
        company, account = draw(accounts_of)
        lines[0] = (company, account, *lines[0][2:])
    elif flaw == "currency":
        lines[0] = (lines[0][0], lines[0][1], "USD" if lines[0][2] == "EUR" else "EUR", lines[0][3])
    return draw(ids), draw(days), tuple(lines)


def document(entry_id: str, day: dt.date, lines: tuple) -> dict:
    return {
        "id": entry_id,
        "date": day.isoformat(),
        "postings": [
            {"company": c, "account": a, "currency": cur, "amount": format_amount(amt, cur)}
            for c, a, cur, amt in lines
        ],
    }


class LedgerMachine(RuleBasedStateMachine):
    make_db = None  # set by the test: () -> Database

    @initialize()
    def setup(self) -> None:
        self.db = type(self).make_db()
        self.model = Model()
        for code, chart in CHART.items():
            companies.add_company(self.db, code, code, "EUR", actor="t", template=None)
            for name, (currencies, constraint) in chart.items():
                companies.add_account(self.db, code, name, actor="t", currencies=sorted(currencies), constraint=constraint, open_date=OPEN_DAY)

    def teardown(self) -> None:
        if hasattr(self, "db"):
            self.db.dispose()

    @rule(batch=st.lists(entries(), min_size=1, max_size=6), all_or_nothing=st.booleans(), size=st.integers(1, 4))
    def post_batch(self, batch, all_or_nothing, size) -> None:
        trial = self.model.copy()
        expected = []
        for entry_id, day, lines in batch:
            if entry_id in trial.content:
                expected.append("duplicate" if trial.content[entry_id] == (day, lines) else "rejected")
            elif trial.judge(lines, day):
                trial.apply(entry_id, lines, day)
                expected.append("accepted")
            else:
                expected.append("rejected")
        report = posting.post_entries(
            self.db,
            [parse_entry(document(*item), i) for i, item in enumerate(batch)],
            actor="t",
            all_or_nothing=all_or_nothing,
            collect_results=True,
            batch_entries=size,
        )
        actual = [o.status for o in report.results]
        if all_or_nothing and "rejected" in expected:
            # Nothing is written; valid entries are reported as not posted.
            assert [s if s != "accepted" else "rejected" for s in expected] == actual
        else:
            assert expected == actual
            self.model = trial

    @precondition(lambda self: any(i not in self.model.reversed and i not in self.model.reversals for i in self.model.content))
    @rule(data=st.data(), delay=st.integers(min_value=0, max_value=20))
    def reverse(self, data, delay) -> None:
        candidates = sorted(i for i in self.model.content if i not in self.model.reversed and i not in self.model.reversals)
        entry_id = data.draw(st.sampled_from(candidates))
        day, lines = self.model.content[entry_id]
        when = day + dt.timedelta(days=delay)
        negated = tuple((c, a, cur, -amt) for c, a, cur, amt in lines)
        ok = self.model.judge(negated, when)
        try:
            result = reverse_entry(self.db, entry_id, when, actor="t")
        except LedgerError:
            assert not ok
            return
        assert ok and result.created
        self.model.apply(reversal_id_for(entry_id), negated, when)
        self.model.reversed.add(entry_id)
        self.model.reversals.add(reversal_id_for(entry_id))

    @rule(company=st.sampled_from(sorted(CHART)), month=st.sampled_from([9, 10, 11]))
    def close_period(self, company, month) -> None:
        end = month_end(dt.date(2026, month, 1))
        start = end.replace(day=1)
        through = self.model.closed_through.get(company)
        gap = any(c == company and d < start and (through is None or d > through) for c, _, _, d, _ in self.model.postings)
        try:
            result = periods.close_period(self.db, company, f"2026-{month:02d}", actor="t")
        except LedgerError:
            assert gap or (through is not None and end <= through)
            return
        if result.already_closed:
            assert through is not None and end <= through
        else:
            assert not gap and (through is None or end > through)
            self.model.closed_through[company] = end

    @invariant()
    def balances_match_the_model(self) -> None:
        if not hasattr(self, "db"):
            return
        def stored(as_of=None):
            return {(l.company, l.account, l.currency): l.balance_minor for l in trial_balance(self.db, as_of=as_of).lines}
        assert stored() == self.model.balances()
        probe = FIRST_DAY + dt.timedelta(days=37)
        assert stored(probe) == self.model.balances(probe)

    @invariant()
    def ledger_verifies(self) -> None:
        if hasattr(self, "db"):
            report = verify(self.db)
            assert report.ok, report.violations


def test_ledger_agrees_with_the_reference_model(request):
    folders: list[str] = []

    def make_db() -> Database:
        if BACKEND == "sqlite":
            folders.append(tempfile.mkdtemp(prefix="ecoledger-prop-"))
            db = Database(f"sqlite:///{folders[-1]}/ledger.db")
        else:
            db = Database(fresh_pg_schema(request))
        metadata.create_all(db.engine)
        return db

    LedgerMachine.make_db = staticmethod(make_db)
    try:
        run_state_machine_as_test(
            LedgerMachine,
            settings=settings(
                max_examples=40 if BACKEND == "sqlite" else 15,
                stateful_step_count=12,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
