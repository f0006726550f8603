"""Settings, limits, currencies and chart-of-accounts templates.

Everything an operator can tune lives here, in one place, with units in the names of
limits. Later issues add posting rules and price plans beside the charts.
"""

from config.settings import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
