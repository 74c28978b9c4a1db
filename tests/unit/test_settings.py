from pathlib import Path

import pytest
from pydantic import ValidationError

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
