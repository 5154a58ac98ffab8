"""Server settings: read from HANDOFF_* variables with safe defaults, bad values reported by variable name, URLs
normalised, secrets kept out of reprs, and a generated table with one row per setting.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from telephony.server.settings import ENV_PREFIX, Settings, SettingsError, load_settings, settings_table

SECRET = "tok-7f3a9c1d5e"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No HANDOFF_* variable from the outer environment and no .env file from the working directory."""
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_bind_to_loopback_port_8000_and_validate_signatures() -> None:
    settings = load_settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.validate_signatures is True
    assert settings.public_url is None
    assert settings.twilio_auth_token.get_secret_value() == ""
    assert settings.api_token.get_secret_value() == ""


def test_handoff_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOFF_HOST", "0.0.0.0")
    monkeypatch.setenv("HANDOFF_PORT", "9001")
    monkeypatch.setenv("HANDOFF_PUBLIC_URL", "https://bot.example.com")
    monkeypatch.setenv("HANDOFF_VALIDATE_SIGNATURES", "false")
    monkeypatch.setenv("HANDOFF_TWILIO_AUTH_TOKEN", SECRET)
    monkeypatch.setenv("HANDOFF_ASR", "oracle")
    monkeypatch.setenv("HANDOFF_TRANSFER_TIMEOUT_S", "45")
    monkeypatch.setenv("HANDOFF_DATA_DIR", "/var/lib/handoff")
    settings = load_settings()
    assert settings.host == "0.0.0.0"
    assert settings.port == 9001
    assert settings.public_url == "https://bot.example.com"
    assert settings.validate_signatures is False
    assert settings.twilio_auth_token.get_secret_value() == SECRET
    assert settings.asr == "oracle"
    assert settings.transfer_timeout_s == 45
    assert settings.data_dir == Path("/var/lib/handoff")


def test_lowercase_variable_names_are_read_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("handoff_port", "9002")
    assert load_settings().port == 9002


def test_variables_without_the_prefix_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9003")
    monkeypatch.setenv("HOST", "0.0.0.0")
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_a_dotenv_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("HANDOFF_PORT=9100\n", encoding="utf-8")
    assert load_settings().port == 9100


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOFF_PORT", "9001")
    assert load_settings(port=9200).port == 9200


@pytest.mark.parametrize("value", ["abc", "0", "65536", "-1", "80.5"])
def test_a_bad_port_raises_settings_error_naming_handoff_port(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HANDOFF_PORT", value)
    with pytest.raises(SettingsError, match="HANDOFF_PORT"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HANDOFF_TRANSFER_TIMEOUT_S", "2"),
        ("HANDOFF_ASR", "whisper"),
        ("HANDOFF_LOG_LEVEL", "verbose"),
        ("HANDOFF_VALIDATE_SIGNATURES", "perhaps"),
        ("HANDOFF_VAD_AGGRESSIVENESS", "4"),
        ("HANDOFF_TWILIO_API_BASE_URL", "api.twilio.com"),
    ],
)
def test_each_bad_value_is_reported_by_its_variable_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_all_bad_values_are_reported_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOFF_PORT", "abc")
    monkeypatch.setenv("HANDOFF_ASR", "whisper")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "HANDOFF_PORT" in str(raised.value) and "HANDOFF_ASR" in str(raised.value)


@pytest.mark.parametrize("value", ["bot.example.com", "wss://bot.example.com", "ftp://bot.example.com", "//bot"])
def test_public_url_without_an_http_scheme_is_rejected(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HANDOFF_PUBLIC_URL", value)
    with pytest.raises(SettingsError, match="HANDOFF_PUBLIC_URL"):
        load_settings()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://bot.example.com/", "https://bot.example.com"),
        ("https://bot.example.com//", "https://bot.example.com"),
        ("https://bot.example.com/base/", "https://bot.example.com/base"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ],
)
def test_public_url_trailing_slash_is_stripped(monkeypatch: pytest.MonkeyPatch, value: str, expected: str) -> None:
    monkeypatch.setenv("HANDOFF_PUBLIC_URL", value)
    monkeypatch.setenv("HANDOFF_TWILIO_API_BASE_URL", value)
    settings = load_settings()
    assert settings.public_url == expected
    assert settings.twilio_api_base_url == expected


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError):
        settings.port = 1  # type: ignore[misc]


def test_the_auth_token_is_a_secret_whose_repr_hides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOFF_TWILIO_AUTH_TOKEN", SECRET)
    monkeypatch.setenv("HANDOFF_API_TOKEN", SECRET + "-api")
    settings = load_settings()
    assert isinstance(settings.twilio_auth_token, SecretStr)
    assert settings.twilio_auth_token.get_secret_value() == SECRET
    for shown in (repr(settings.twilio_auth_token), str(settings.twilio_auth_token), repr(settings), str(settings)):
        assert SECRET not in shown


def test_settings_table_has_a_row_for_every_field() -> None:
    lines = settings_table().splitlines()
    assert lines[0] == "| variable | default | what it does |"
    rows = lines[2:]
    assert len(rows) == len(Settings.model_fields)
    for row, (name, info) in zip(rows, Settings.model_fields.items(), strict=True):
        assert row.startswith(f"| `HANDOFF_{name.upper()}` |")
        assert info.description and info.description in row


def test_settings_table_shows_defaults() -> None:
    table = settings_table()
    assert "| `HANDOFF_HOST` | `127.0.0.1` |" in table
    assert "| `HANDOFF_PORT` | `8000` |" in table
    assert "| `HANDOFF_PUBLIC_URL` | (unset) |" in table
    assert str(Path.home()) not in table  # home folders are shown as ~


def test_settings_table_never_prints_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOFF_TWILIO_AUTH_TOKEN", SECRET)
    monkeypatch.setenv("HANDOFF_API_TOKEN", SECRET)
    load_settings()
    table = settings_table()
    assert SECRET not in table
    assert "| `HANDOFF_TWILIO_AUTH_TOKEN` | (unset) |" in table
    assert "| `HANDOFF_API_TOKEN` | (unset) |" in table


# --- which recogniser the settings ask for ---------------------------------------------------------------------


def test_oracle_asr_is_oracle_recognition_and_says_so(tmp_path: Path) -> None:
    from telephony.server.services import build_services, oracle_of

    settings = Settings(asr="oracle", data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    services = build_services(settings)
    assert services.recognition.name == "oracle" and oracle_of(services.recognition) is not None


def test_vosk_without_a_model_stops_start_up_with_one_sentence_saying_how_to_get_one(tmp_path: Path) -> None:
    from telephony.server.services import build_services
    from voice.errors import ModelNotFound

    settings = Settings(asr="vosk", data_dir=tmp_path, model_cache_dir=tmp_path / "models", _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ModelNotFound) as caught:
        build_services(settings)
    message = str(caught.value)
    assert "`handoff models fetch`" in message
    assert message.endswith(".") and ". " not in message and "\n" not in message  # one sentence


def test_the_readme_shows_the_settings_table_as_generated() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    assert settings_table() in readme, "README's configuration table is stale: paste `handoff settings --markdown`"


def test_the_job_queue_needs_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOFF_JOBS", "queue")
    with pytest.raises(
        SettingsError, match=r"configuration: HANDOFF_JOBS=queue needs HANDOFF_DATABASE_URL on PostgreSQL"
    ):
        load_settings(_env_file=None)
    monkeypatch.setenv("HANDOFF_DATABASE_URL", "postgresql+psycopg://u@127.0.0.1/handoff")
    assert load_settings(_env_file=None).jobs == "queue"
