"""Admin key settings: apart from client keys, the deploy's key among them; the CLI mints one."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from bentos.auth import ADMIN_KEY_PREFIX, generate_api_key, hash_api_key
from cli.main import app
from finsimples.settings import Settings

CLIENT, CLIENT_HASH = generate_api_key()
ADMIN, ADMIN_HASH = generate_api_key(ADMIN_KEY_PREFIX)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_the_deploy_key_is_an_admin_key() -> None:
    ok = settings(api_key_hashes=[CLIENT_HASH], admin_key_hashes=[ADMIN_HASH], deploy_api_key=ADMIN)
    assert ok.admin_key_hashes == [ADMIN_HASH]
    # Keys off: the deploy's calls are direct local requests, any key is ignored.
    assert settings(deploy_api_key=ADMIN).deploy_api_key is not None


def test_a_client_key_as_the_deploy_key_is_refused_saying_where_to_put_it() -> None:
    with pytest.raises(ValidationError) as error:
        settings(api_key_hashes=[CLIENT_HASH], deploy_api_key=CLIENT)
    message = str(error.value)
    assert "it is a client key's hash" in message
    assert "FINSIMPLES_ADMIN_KEY_HASHES" in message
    assert CLIENT not in message  # never the key itself


def test_an_unknown_deploy_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="not in admin_key_hashes; the deploy calls"):
        settings(admin_key_hashes=[ADMIN_HASH], deploy_api_key="fs_something-else")


def test_one_hash_cannot_be_both_kinds() -> None:
    with pytest.raises(ValidationError, match="a key is either a client key or an admin key"):
        settings(api_key_hashes=[CLIENT_HASH, ADMIN_HASH], admin_key_hashes=[ADMIN_HASH.upper()])


@pytest.mark.parametrize(
    ("flag", "prefix", "variable"),
    [([], "fs_", "FINSIMPLES_API_KEY_HASHES"), (["--admin"], "fs_admin_", "FINSIMPLES_ADMIN_KEY")],
)
def test_api_key_new_prints_the_key_its_hash_and_where_it_goes(
    flag: list[str], prefix: str, variable: str
) -> None:
    done = CliRunner().invoke(app, ["api-key", "new", *flag])
    assert done.exit_code == 0, done.output
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    key, digest = lines["key"].strip(), lines["sha256"].strip()
    assert key.startswith(prefix)
    assert key.startswith(ADMIN_KEY_PREFIX) == bool(flag)
    assert hash_api_key(key) == digest
    assert variable in done.stderr
