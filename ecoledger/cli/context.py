"""What every command shares: the settings and one database handle, opened on first use."""

from __future__ import annotations

from config import Settings
from ecoledger import migrate
from ledger.database import Database


class NotReady(RuntimeError):
    """The database exists but is not (or not yet fully) an ecoledger database."""


class AppContext:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._db: Database | None = None

    @property
    def actor(self) -> str:
        return self.settings.actor

    def database(self, *, require_schema: bool = True) -> Database:
        if self._db is None:
            self._db = Database(self.settings.database_url, echo=self.settings.echo_sql)
            if require_schema:
                current, head = migrate.current_revision(self._db), migrate.head_revision()
                if current is None:
                    raise NotReady(
                        f"{self.describe()} is not initialised: run `ecoledger init` first"
                    )
                if current != head:
                    raise NotReady(
                        f"{self.describe()} is at schema {current}, this ecoledger needs {head}: "
                        "run `ecoledger init` to upgrade"
                    )
        return self._db

    def describe(self) -> str:
        return self._db.url.render_as_string(hide_password=True) if self._db else self.settings.database_url

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()
            self._db = None
