"""Settings: defaults, then the settings file, then the environment."""

from __future__ import annotations

import re

import pytest

from config import Settings, SettingsError, load_settings


def test_defaults(tmp_path):
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.database_url == "sqlite:///ecoledger.db"
    assert settings.data_dir == ".ecoledger" and settings.echo_sql is False
    assert settings.actor.startswith("cli:")


def test_file_then_environment(tmp_path):
    (tmp_path / "ecoledger.toml").write_text('database_url = "sqlite:///from-file.db"\nactor = "ops:file"\n')
    settings = load_settings(environ={"ECOLEDGER_ACTOR": "ops:env"}, cwd=tmp_path)
    assert settings.database_url == "sqlite:///from-file.db" and settings.actor == "ops:env"


def test_explicit_settings_file(tmp_path):
    other = tmp_path / "elsewhere.toml"
    other.write_text("echo_sql = true\n")
    settings = load_settings(environ={"ECOLEDGER_SETTINGS": str(other)}, cwd=tmp_path)
    assert settings.echo_sql is True


@pytest.mark.parametrize("value, expected", [("1", True), ("yes", True), ("off", False), ("", False)])
def test_booleans_from_the_environment(tmp_path, value, expected):
    assert load_settings(environ={"ECOLEDGER_ECHO_SQL": value}, cwd=tmp_path).echo_sql is expected


@pytest.mark.parametrize(
    "content, environ, message",
    [
        ("databse_url = 'x'\n", {}, "unknown setting(s) databse_url"),
        ("database_url = [1]\n", {}, "database_url must be a string"),
        ("database_url = \n", {}, "settings file"),
        ("", {"ECOLEDGER_ECHO_SQL": "maybe"}, "echo_sql must be true or false"),
    ],
)
def test_bad_settings_name_the_setting(tmp_path, content, environ, message):
    (tmp_path / "ecoledger.toml").write_text(content)
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings(environ=environ, cwd=tmp_path)


def test_missing_explicit_file(tmp_path):
    with pytest.raises(SettingsError, match="No such file"):
        load_settings(environ={"ECOLEDGER_SETTINGS": str(tmp_path / "nope.toml")}, cwd=tmp_path)


def test_overrides_ignore_none():
    settings = Settings(database_url="sqlite:///a.db").with_overrides(database_url=None, actor="x")
    assert settings.database_url == "sqlite:///a.db" and settings.actor == "x"
