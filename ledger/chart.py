"""Chart-of-accounts templates (YAML, kept in ``config/charts``) and account-name rules."""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path
from typing import NamedTuple

import yaml
from beancount.core import account as bc_account

from config import limits
from ledger.records import E_INVALID, E_NOT_FOUND, LedgerError, Problem, show

ROOT_TYPES = {
    "Assets": "asset",
    "Liabilities": "liability",
    "Equity": "equity",
    "Income": "income",
    "Expenses": "expense",
}
ROLES = ("operator", "vendor", "reseller")
CONSTRAINTS = ("non_negative", "non_positive")
ACCOUNT_NAME_CHARS_MAX = 200
_TEMPLATE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_\-]{0,63}")


class TemplateAccount(NamedTuple):
    name: str
    description: str
    roles: tuple[str, ...]
    constraint: str | None


class ChartTemplate(NamedTuple):
    name: str
    description: str
    accounts: tuple[TemplateAccount, ...]

    def accounts_for(self, roles: tuple[str, ...]) -> list[TemplateAccount]:
        """The template's accounts for a company with ``roles``."""
        return [a for a in self.accounts if not a.roles or set(a.roles) & set(roles)]


def account_type(name: str, field: str = "account") -> str:
    """The account type implied by a beancount account name; LedgerError if invalid."""
    if type(name) is not str or len(name) > ACCOUNT_NAME_CHARS_MAX or not bc_account.is_valid(name):
        raise LedgerError(
            Problem(
                E_INVALID,
                field,
                f"{show(name)} is not an account name like Assets:Receivables:Unbilled "
                "(capitalised components joined by ':', letters, digits and '-')",
            )
        )
    root = name.split(":", 1)[0]
    if root not in ROOT_TYPES:
        raise LedgerError(
            Problem(
                E_INVALID,
                field,
                f"{show(name)} must start with one of {', '.join(ROOT_TYPES)}",
            )
        )
    return ROOT_TYPES[root]


def available_templates() -> list[str]:
    folder = importlib.resources.files("config.charts")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_template(name: str) -> ChartTemplate:
    """A template shipped in config/charts, by name. Never a path: names may come from
    API callers."""
    if not isinstance(name, str) or not _TEMPLATE_NAME_RE.fullmatch(name) or name not in available_templates():
        raise LedgerError(
            Problem(
                E_NOT_FOUND,
                "template",
                f"no chart template {show(name)}; available: {', '.join(available_templates())}",
            )
        )
    text = (importlib.resources.files("config.charts") / f"{name}.yaml").read_text(encoding="utf-8")
    return parse_template(text, name)


def load_template_file(path: Path) -> ChartTemplate:
    """A template from a YAML file of the operator's own (CLI only)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerError(Problem(E_NOT_FOUND, "template", f"cannot read {path}: {exc}")) from exc
    return parse_template(text, str(path))


def parse_template(text: str, source: str) -> ChartTemplate:
    def bad(message: str) -> LedgerError:
        return LedgerError(Problem(E_INVALID, "template", f"{source}: {message}"))

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise bad(f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("accounts"), list):
        raise bad("must be a mapping with an 'accounts' list")
    if len(data["accounts"]) > limits.CHART_ACCOUNTS_MAX:
        raise bad(f"more than {limits.CHART_ACCOUNTS_MAX} accounts")
    result: list[TemplateAccount] = []
    seen: set[str] = set()
    for index, raw in enumerate(data["accounts"]):
        where = f"accounts[{index}]"
        if not isinstance(raw, dict) or not set(raw) <= {"name", "description", "roles", "constraint"}:
            raise bad(f"{where} must have name and optionally description, roles, constraint")
        name = raw.get("name")
        try:
            account_type(name)
        except LedgerError as exc:
            raise bad(f"{where}: {exc}") from exc
        if name in seen:
            raise bad(f"{where}: {name} appears twice")
        seen.add(name)
        roles = raw.get("roles") or []
        if not isinstance(roles, list) or not set(roles) <= set(ROLES):
            raise bad(f"{where}: roles must be a list of {', '.join(ROLES)}")
        constraint = raw.get("constraint")
        if constraint is not None and constraint not in CONSTRAINTS:
            raise bad(f"{where}: constraint must be one of {', '.join(CONSTRAINTS)}")
        description = raw.get("description") or ""
        if not isinstance(description, str) or len(description) > 500:
            raise bad(f"{where}: description must be text of at most 500 characters")
        result.append(TemplateAccount(name, description, tuple(roles), constraint))
    return ChartTemplate(str(data.get("name") or source), str(data.get("description") or ""), tuple(result))
