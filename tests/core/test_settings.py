"""Settings from the environment and from the TOML file named by DEALFLOW_CONFIG."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.core.errors import ConfigError
from server.settings import Settings, load_settings


def write_toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "dealflow.toml"
    path.write_text(text)
    return str(path)


# --- defaults and the environment ------------------------------------------------------------


def test_defaults_without_environment() -> None:
    settings = load_settings({})
    assert settings.database_url == "sqlite:///dealflow.db"
    assert settings.redis_url is None
    assert settings.smtp_url is None
    assert settings.secret_key is None
    assert settings.max_body_size == 1_048_576
    assert settings.plugins_disable == ()
    assert settings.debug is False
    assert settings.extra == {}


def test_given_env_is_used_instead_of_the_process_environment(monkeypatch) -> None:
    # Given
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    monkeypatch.setenv("DEALFLOW_MAX_BODY_SIZE", "12")
    # When
    settings = load_settings({})
    # Then
    assert settings.database_url == "sqlite:///dealflow.db"
    assert settings.max_body_size == 1_048_576


def test_process_environment_is_read_when_no_env_is_given(monkeypatch) -> None:
    monkeypatch.delenv("DEALFLOW_CONFIG", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    assert load_settings().database_url == "postgresql://elsewhere/db"


def test_environment_sets_each_key() -> None:
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://user@db.example/dealflow",
            "REDIS_URL": "redis://cache.example:6379/0",
            "SMTP_URL": "smtp://mail.example:25",
            "DEALFLOW_SECRET_KEY": "s3cret",
            "DEALFLOW_MAX_BODY_SIZE": "2048",
            "DEALFLOW_PLUGINS_DISABLE": "notify_slack, erp_export,,",
            "DEALFLOW_DEBUG": "true",
        }
    )
    assert settings.database_url == "postgresql://user@db.example/dealflow"
    assert settings.redis_url == "redis://cache.example:6379/0"
    assert settings.smtp_url == "smtp://mail.example:25"
    assert settings.secret_key == "s3cret"
    assert settings.max_body_size == 2048
    assert isinstance(settings.max_body_size, int)
    assert settings.plugins_disable == ("notify_slack", "erp_export")
    assert settings.debug is True


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("false", False)],
)
def test_debug_flag_spellings(raw: str, expected: bool) -> None:
    assert load_settings({"DEALFLOW_DEBUG": raw}).debug is expected


def test_empty_variables_keep_the_defaults() -> None:
    settings = load_settings({"DATABASE_URL": "", "REDIS_URL": "", "DEALFLOW_MAX_BODY_SIZE": ""})
    assert settings.database_url == "sqlite:///dealflow.db"
    assert settings.redis_url is None
    assert settings.max_body_size == 1_048_576


def test_single_plugin_to_disable_is_a_tuple_of_one() -> None:
    assert load_settings({"DEALFLOW_PLUGINS_DISABLE": "notify_telegram"}).plugins_disable == (
        "notify_telegram",
    )


@pytest.mark.parametrize("raw", ["abc", "1.5", "64KiB"])
def test_non_integer_body_size_is_a_config_error_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"DEALFLOW_MAX_BODY_SIZE": raw})
    assert "DEALFLOW_MAX_BODY_SIZE" in info.value.message
    assert raw in info.value.message


# --- the TOML file ---------------------------------------------------------------------------


def test_toml_file_sets_the_same_keys(tmp_path: Path) -> None:
    # Given
    config = write_toml(
        tmp_path,
        """
DATABASE_URL = "postgresql://toml@db.example/dealflow"
REDIS_URL = "redis://toml.example:6379/1"
DEALFLOW_MAX_BODY_SIZE = 4096
DEALFLOW_PLUGINS_DISABLE = ["notify_slack", "email_marketing"]
DEALFLOW_DEBUG = true
""",
    )
    # When
    settings = load_settings({"DEALFLOW_CONFIG": config})
    # Then
    assert settings.database_url == "postgresql://toml@db.example/dealflow"
    assert settings.redis_url == "redis://toml.example:6379/1"
    assert settings.max_body_size == 4096
    assert settings.plugins_disable == ("notify_slack", "email_marketing")
    assert settings.debug is True
    assert settings.extra == {}


def test_toml_file_accepts_field_names_too(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        'database_url = "sqlite:///other.db"\nmax_body_size = 100\nplugins_disable = "a,b"\n',
    )
    settings = load_settings({"DEALFLOW_CONFIG": config})
    assert settings.database_url == "sqlite:///other.db"
    assert settings.max_body_size == 100
    assert settings.plugins_disable == ("a", "b")


def test_environment_wins_over_the_toml_file(tmp_path: Path) -> None:
    # Given
    config = write_toml(
        tmp_path,
        'DATABASE_URL = "sqlite:///from-toml.db"\nDEALFLOW_MAX_BODY_SIZE = 4096\n'
        'REDIS_URL = "redis://toml.example"\n',
    )
    # When
    settings = load_settings(
        {
            "DEALFLOW_CONFIG": config,
            "DATABASE_URL": "sqlite:///from-env.db",
            "DEALFLOW_MAX_BODY_SIZE": "8192",
        }
    )
    # Then
    assert settings.database_url == "sqlite:///from-env.db"
    assert settings.max_body_size == 8192
    assert settings.redis_url == "redis://toml.example"


def test_unknown_toml_keys_are_kept_for_plugins(tmp_path: Path) -> None:
    config = write_toml(tmp_path, 'SLACK_WEBHOOK = "https://hooks.example/x"\nRETRIES = 3\n')
    settings = load_settings({"DEALFLOW_CONFIG": config})
    assert settings.extra == {"SLACK_WEBHOOK": "https://hooks.example/x", "RETRIES": "3"}
    assert settings.database_url == "sqlite:///dealflow.db"


def test_non_integer_body_size_in_toml_names_the_file(tmp_path: Path) -> None:
    config = write_toml(tmp_path, 'DEALFLOW_MAX_BODY_SIZE = "big"\n')
    with pytest.raises(ConfigError) as info:
        load_settings({"DEALFLOW_CONFIG": config})
    assert config in info.value.message


def test_body_size_of_the_wrong_toml_type_names_the_file(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "max_body_size = [1, 2]\n")
    with pytest.raises(ConfigError) as info:
        load_settings({"DEALFLOW_CONFIG": config})
    assert config in info.value.message


def test_missing_toml_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    config = str(tmp_path / "nowhere.toml")
    with pytest.raises(ConfigError) as info:
        load_settings({"DEALFLOW_CONFIG": config})
    assert config in info.value.message


def test_invalid_toml_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "DATABASE_URL = \n[[[\n")
    with pytest.raises(ConfigError) as info:
        load_settings({"DEALFLOW_CONFIG": config})
    assert config in info.value.message


def test_toml_that_is_not_text_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00DATABASE_URL\x80\x81")
    with pytest.raises(ConfigError) as info:
        load_settings({"DEALFLOW_CONFIG": str(path)})
    assert str(path) in info.value.message


def test_directory_as_toml_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"DEALFLOW_CONFIG": str(tmp_path)})
    assert str(tmp_path) in info.value.message


def test_settings_are_immutable() -> None:
    settings = load_settings({})
    with pytest.raises(AttributeError):
        settings.database_url = "sqlite:///x.db"  # type: ignore[misc]
    assert isinstance(settings, Settings)


def test_plugin_settings_come_from_the_environment_and_win_over_the_file(tmp_path) -> None:
    config = tmp_path / "dealflow.toml"
    config.write_text('telegram_api_base = "http://file.example"\nerp_timeout = "5"\n')
    settings = load_settings({
        "DEALFLOW_CONFIG": str(config),
        "DEALFLOW_PLUGIN_TELEGRAM_API_BASE": "http://127.0.0.1:9999",
    })
    assert settings.extra == {"telegram_api_base": "http://127.0.0.1:9999", "erp_timeout": "5"}


# --- limits that must be positive integers ---------------------------------------------------

LIMITS = {
    "DEALFLOW_MAX_DEPTH": "max_depth",
    "DEALFLOW_MAX_EVENTS_PER_CHANGE": "max_events_per_change",
    "DEALFLOW_MAX_EXECUTIONS_PER_CHANGE": "max_executions_per_change",
}


@pytest.mark.parametrize("variable", LIMITS)
def test_a_limit_is_read_from_its_variable_and_from_the_toml_file(
    variable: str, tmp_path: Path
) -> None:
    name = LIMITS[variable]
    assert getattr(load_settings({variable: "3"}), name) == 3
    config = write_toml(tmp_path, f"{name} = 7\n")
    assert getattr(load_settings({"DEALFLOW_CONFIG": config}), name) == 7


@pytest.mark.parametrize("variable", LIMITS)
@pytest.mark.parametrize("raw", ["0", "-1", "abc", "1.5", "2e3"])
def test_a_limit_that_is_not_a_positive_integer_is_a_config_error_naming_it(
    variable: str, raw: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({variable: raw})
    assert info.value.message == (
        f"{variable}: {LIMITS[variable]} must be a positive integer (1 or more), got {raw!r}"
    )


@pytest.mark.parametrize("variable", LIMITS)
@pytest.mark.parametrize("raw", [0, -3, 2.5, True, "5"])
def test_a_limit_of_the_wrong_toml_type_or_value_names_the_file(
    variable: str, raw: object, tmp_path: Path
) -> None:
    value = repr(raw) if isinstance(raw, str) else str(raw).lower()
    config = write_toml(tmp_path, f"{LIMITS[variable]} = {value}\n")
    if raw == "5":
        # A quoted number is read like the environment's strings.
        assert getattr(load_settings({"DEALFLOW_CONFIG": config}), LIMITS[variable]) == 5
        return
    with pytest.raises(ConfigError, match="must be a positive integer") as info:
        load_settings({"DEALFLOW_CONFIG": config})
    assert info.value.message.startswith(config)


@pytest.mark.parametrize("name", LIMITS.values())
def test_a_limit_set_in_code_is_checked_too(name: str) -> None:
    assert getattr(Settings(**{name: 1}), name) == 1  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=f"{name} must be a positive integer"):
        Settings(**{name: 0})  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["1e12", "-5", "0", "nan", "inf"])
def test_an_event_hook_lease_out_of_range_is_a_config_error(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"DEALFLOW_EVENT_HOOK_LEASE_SECONDS": raw})
    assert info.value.message.startswith(
        "DEALFLOW_EVENT_HOOK_LEASE_SECONDS: event_hook_lease_seconds must be from 0.1 to 86400")
    assert load_settings({"DEALFLOW_EVENT_HOOK_LEASE_SECONDS": "90"}).event_hook_lease_seconds == 90
