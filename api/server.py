"""gunicorn running the API: the production server behind `ecoledger serve`."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from config import Settings


class Server(BaseApplication):
    """gunicorn configured from settings, not from a config file or its own command line."""

    def __init__(self, settings: Settings, *, access_log: bool = True) -> None:
        self.settings = settings
        self.options = {
            "bind": f"{settings.api_host}:{settings.api_port}",
            "workers": settings.api_workers,
            "threads": settings.api_threads,
            "worker_class": "gthread",
            "timeout": settings.api_timeout_seconds,
            "graceful_timeout": settings.api_timeout_seconds,
            "accesslog": "-" if access_log else None,
            "errorlog": "-",
            # Each process builds its own app and database pool after the fork: a pool's
            # connections must never be shared between processes.
            "preload_app": False,
            "proc_name": "ecoledger-api",
            "control_socket_disable": True,  # no gunicornc: `ecoledger serve` is managed by signals
        }
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self):
        from api import create_app

        return create_app(self.settings)


def run(settings: Settings, *, access_log: bool = True) -> None:
    Server(settings, access_log=access_log).run()
