from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings.exceptions import SettingsError

from finsimples.environment import describe_settings_error, unknown_variables
from finsimples.settings import Settings


def test_defaults_need_no_server() -> None:
    settings = Settings()
    assert settings.resolved_lake_uri == str(Path(".finsimples") / "lake")
    assert settings.resolved_mlflow_tracking_uri.startswith("sqlite:///")
    assert settings.resolved_mlflow_tracking_uri.endswith("/.finsimples/mlflow.db")
    assert settings.redis_url is None
    assert settings.openai_api_key is None


def test_environment_variables_use_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSIMPLES_LAKE_URI", "s3://bucket/prefix")
    monkeypatch.setenv("FINSIMPLES_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("FINSIMPLES_S3_SECRET_ACCESS_KEY", "hush")
    settings = Settings()
    assert settings.resolved_lake_uri == "s3://bucket/prefix"
    assert settings.s3_endpoint_url == "http://127.0.0.1:9000"
    assert "hush" not in repr(settings)


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FINSIMPLES_LAKE_COMPACT_MIN_FILES=5\n")
    assert Settings().lake_compact_min_files == 5


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.lake_uri = "elsewhere"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("lake_uri", "gs://bucket/x", "expected a local folder, file://PATH or s3://BUCKET/PREFIX"),
        ("lake_compact_min_files", 1, "greater than or equal to 2"),
        ("no_such_setting", 1, "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_name_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        Settings(**{field: value})
    assert field in str(info.value)


def test_a_misspelt_variable_is_refused_with_the_closest_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Silently ignored, this typo would turn API keys off.
    monkeypatch.setenv("FINSIMPLES_API_KEY_HASH", "0" * 64)
    with pytest.raises(SettingsError) as info:
        Settings()
    assert str(info.value) == (
        "FINSIMPLES_API_KEY_HASH is not a FinSimples setting "
        "(did you mean FINSIMPLES_API_KEY_HASHES?)"
    )


def test_nested_variables_are_known_and_misspelt_ones_are_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINSIMPLES_STACK__NGINX_PORT", "8090")
    monkeypatch.setenv("FINSIMPLES_HOME", "/app")  # the flow image's code folder, not a setting
    assert Settings().stack.nginx_port == 8090
    problems = unknown_variables(Settings, {"FINSIMPLES_STACK__NGINX_PRT": "1", "HOME": "/"})
    assert problems == [
        "FINSIMPLES_STACK__NGINX_PRT is not a FinSimples setting "
        "(did you mean FINSIMPLES_STACK__NGINX_PORT?)"
    ]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "FINSIMPLES_LATENCY_BUDGET_SECONDS",
            "abc",
            "FINSIMPLES_LATENCY_BUDGET_SECONDS='abc': Input should be a valid number, "
            "unable to parse string as a number",
        ),
        (
            "FINSIMPLES_STACK__REPLICAS",
            "0",
            "FINSIMPLES_STACK__REPLICAS='0': Input should be greater than or equal to 1",
        ),
        (
            "FINSIMPLES_API_KEY_HASHES",
            "not json",
            "FINSIMPLES_API_KEY_HASHES: is not valid JSON (Expecting value: line 1 column 1 "
            '(char 0)); a list is written as ["a", "b"]',
        ),
        ("FINSIMPLES_LAKE_URI", "gs://x", "FINSIMPLES_LAKE_URI='gs://x': Value error, "),
    ],
)
def test_a_garbage_value_is_described_by_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises((ValidationError, SettingsError)) as info:
        Settings()
    assert describe_settings_error(info.value, Settings).startswith(expected)


def test_a_secrets_value_is_never_echoed() -> None:
    # A secret that fails validation (a list where a string belongs) is named, not shown.
    with pytest.raises(ValidationError) as info:
        Settings(openai_api_key=["sk-CANARY-1234"])  # type: ignore[arg-type]
    described = describe_settings_error(info.value, Settings)
    assert described.startswith("FINSIMPLES_OPENAI_API_KEY: ")
    assert "CANARY" not in described


def test_a_misspelt_line_of_the_dotenv_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("FINSIMPLES_LATENCY_BUDGT=4\n")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert describe_settings_error(info.value, Settings) == (
        "FINSIMPLES_LATENCY_BUDGT (in the .env file) is not a FinSimples setting "
        "(did you mean FINSIMPLES_LATENCY_BUDGET_SECONDS?)"
    )


def test_a_check_across_settings_is_told_as_its_own_message() -> None:
    digest = "a" * 64
    with pytest.raises(ValidationError) as info:
        Settings(api_key_hashes=[digest], admin_key_hashes=[digest])
    described = describe_settings_error(info.value, Settings)
    assert described.startswith("Value error, 1 hash(es) in both api_key_hashes and admin_key_")
