"""Settings: documented defaults, overridden by a settings file, overridden by the environment.

Precedence (lowest first): the defaults below; the TOML settings file named by
``ECOLEDGER_SETTINGS`` (or ``./ecoledger.toml`` when it exists); environment variables
``ECOLEDGER_<NAME>``; finally command-line options, which the CLI applies on top.

Example ``ecoledger.toml``::

    database_url = "postgresql+psycopg://ledger@db.internal/ecoledger"
    actor = "ops:jane"
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

ENV_PREFIX = "ECOLEDGER_"
SETTINGS_FILE_ENV = "ECOLEDGER_SETTINGS"
DEFAULT_SETTINGS_FILE = "ecoledger.toml"


class SettingsError(ValueError):
    """A settings file or variable is unreadable or has an unknown or malformed value."""


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return "cli:unknown"


@dataclasses.dataclass(frozen=True)
class Settings:
    """All settings of one ecoledger installation. Field docs are the reference."""

    # SQLAlchemy URL of the ledger database. Default: the SQLite file ecoledger.db in the
    # current directory. Production: postgresql+psycopg://user@host/db (extra [postgres]).
    database_url: str = "sqlite:///ecoledger.db"

    # Directory for ecoledger's own files (job broker queues, exports). Relative paths are
    # resolved against the current directory.
    data_dir: str = ".ecoledger"

    # Who the audit log names for changes made from this process (CLI user, service name).
    actor: str = dataclasses.field(default_factory=_default_actor)

    # Log every SQL statement (debugging only).
    echo_sql: bool = False

    # Celery broker for jobs. Empty: the embedded filesystem broker under data_dir, with
    # no server to run. Production: redis://host:6379/0 (extra [redis]) or
    # amqp://user:password@host:5672// (RabbitMQ).
    broker_url: str = ""

    # The broker queue this ledger's jobs travel on. Ledgers sharing one broker (staging
    # and production on one Redis) need different queues.
    job_queue: str = "ecoledger"

    # Jobs: a running job's worker writes a heartbeat every job_heartbeat_seconds; a job
    # whose heartbeat is older than job_stale_seconds is re-queued by the reaper, which
    # every worker runs every job_reap_interval_seconds. A queued job nobody claimed for
    # job_resend_seconds is sent to the broker again (a message lost with its worker).
    job_heartbeat_seconds: float = 10.0
    job_stale_seconds: float = 60.0
    job_reap_interval_seconds: float = 15.0
    job_resend_seconds: float = 120.0

    # Redis and SQS redeliver an unacknowledged message after this long; it must exceed the
    # longest job. The reaper recovers crashed jobs much sooner either way.
    broker_visibility_timeout_seconds: int = 6 * 3600

    # Run the recurring jobs of config/schedule.py (nightly verify, ...) from `ecoledger
    # worker --beat`.
    schedule_enabled: bool = True

    # Posting rules of contract events (YAML; see contracts/rules.py). Empty: the shipped
    # config/posting_rules.yaml. An ecosystem overrides them with its own file.
    posting_rules: str = ""

    # Usage imports: "line" posts one entry per usage line; "aggregated" one per contract
    # component and day (the lines keep the entry's position). Lines dated in a closed period
    # are posted on the first open day, marked late ("first_open_period"), or refused
    # ("reject"). Alerts are raised when a period's usage reaches these percentages of an
    # allowance or of a component's budget (comma-separated). holiday_calendar names the
    # country ("FI") or country and subdivision ("DE-BY") whose public holidays the holiday
    # price driver uses; empty: none.
    usage_posting: str = "line"
    usage_late_policy: str = "first_open_period"
    usage_alert_percents: str = "80,100"
    holiday_calendar: str = ""
    # When a month's rating periods end (usage period-alerts): an underrun alert below this
    # percentage of a component's budget, and run-rate alerts above or below these
    # percentages of the mean of its last usage_run_rate_periods periods.
    usage_underrun_percent: int = 50
    usage_run_rate_high_percent: int = 150
    usage_run_rate_low_percent: int = 50
    usage_run_rate_periods: int = 3

    # Billing: an invoice is due this many days after its issue date. Consolidated billing
    # invoices each organisation (the top of a customer hierarchy) for the usage of every
    # customer below it, a line naming the customer and cost centre; otherwise each
    # customer gets its own invoice. invoice_rounding: "line" invoices usage as rated, each
    # line rounded to the cent; "document" rounds each invoice's unrounded usage once.
    # invoice_approval: billing runs invoice a customer only at a total approved after review
    # (ecoledger billing preview / billing approve); the others wait.
    invoice_payment_terms_days: int = 30
    invoice_consolidate: bool = False
    invoice_rounding: str = "line"
    invoice_approval: bool = False
    # PDF documents embed this TrueType font (and its bold face) to print every script it
    # has; empty: DejaVu Sans when the system has it, else Helvetica (Latin-1 only).
    pdf_font: str = ""
    pdf_font_bold: str = ""

    # Revenue recognition (revrec/): the standalone selling price table (YAML; see
    # revrec/ssp.py), empty: the shipped config/ssp.yaml; and the day-count policy spreading
    # a billing period's revenue over its months: "actual_days" (by the days of the period in
    # each month) or "equal_months" (each whole month alike, part months by their days).
    ssp_table: str = ""
    revrec_day_count: str = "actual_days"
    # Contract costs (revrec/costs.py): the practical expedient of IFRS 15.94, expensing the
    # costs of obtaining a contract when they would be amortised over a year or less.
    contract_costs_expedient: bool = True

    # `ecoledger serve`: where the API listens, and how many processes (each with
    # api_threads threads) answer. Bind 0.0.0.0 only behind a TLS-terminating proxy.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = 2
    api_threads: int = 4
    # Seconds a request may take before gunicorn restarts its worker.
    api_timeout_seconds: int = 60

    def with_overrides(self, **overrides: object) -> Settings:
        """Return a copy with the given non-None values replaced (CLI options)."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, raw: object, source: str) -> object:
    field_type = _FIELDS[name].type
    if field_type in ("int", "float"):
        number_type = int if field_type == "int" else float
        if isinstance(raw, bool):
            raise SettingsError(f"{source}: {name} must be a number, not {raw!r}")
        try:
            value = number_type(raw)
        except (TypeError, ValueError):
            raise SettingsError(f"{source}: {name} must be a number, not {raw!r}") from None
        if value <= 0:
            raise SettingsError(f"{source}: {name} must be greater than zero, not {raw!r}")
        return value
    if field_type in ("bool", bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{source}: {name} must be true or false, not {raw!r}")
    if not isinstance(raw, str):
        raise SettingsError(f"{source}: {name} must be a string, not {type(raw).__name__}")
    return raw


def _from_file(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise SettingsError(f"settings file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"settings file {path}: {exc}") from exc
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise SettingsError(
            f"settings file {path}: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_FIELDS))}"
        )
    return {name: _coerce(name, value, f"settings file {path}") for name, value in data.items()}


def _from_env(environ: Mapping[str, str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for name in _FIELDS:
        key = ENV_PREFIX + name.upper()
        if key in environ:
            values[name] = _coerce(name, environ[key], f"environment variable {key}")
    return values


def load_settings(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Read settings from the defaults, the settings file and the environment."""
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    values: dict[str, object] = {}
    explicit = environ.get(SETTINGS_FILE_ENV)
    if explicit:
        values.update(_from_file(Path(explicit)))
    elif (cwd / DEFAULT_SETTINGS_FILE).is_file():
        values.update(_from_file(cwd / DEFAULT_SETTINGS_FILE))
    values.update(_from_env(environ))
    return Settings(**values)
