"""The leak tests' search helper finds a planted secret in every form it claims to read."""

from __future__ import annotations

import base64
import gzip
import io
import zipfile
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.leaks import LeakScanner, encoded_forms

SECRET = "fs_LEAKCANARY/unit+Zx9_q"  # "/" and "+": its URL-encoded form differs


def scanner_of(secret: str) -> LeakScanner:
    return LeakScanner({"client key": secret})


def scanner() -> LeakScanner:
    return scanner_of(SECRET)


def test_a_clean_tree_is_counted_and_holds_no_leak(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("nothing here but fs_LEAK and CANARY apart\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(bytes(range(256)))
    found = scanner()
    found.scan_tree(tmp_path)
    assert (found.files, found.leaks) == (2, [])
    assert found.searched_bytes == len("nothing here but fs_LEAK and CANARY apart\n") + 256


@pytest.mark.parametrize("offset", [0, 1, 2])
def test_base64_inside_a_longer_text_is_found_at_every_alignment(offset: int) -> None:
    # e.g. `Authorization: Basic base64("user:" + key)`, the key at any offset modulo 3
    blob = base64.b64encode(b"u" * (offset + 3) + b":" + SECRET.encode() + b"@host")
    found = scanner()
    found.scan_bytes("header", b"Authorization: Basic " + blob)
    assert [leak.form.split("+")[0] for leak in found.leaks] == ["base64"]


def test_planted_files_are_found_raw_url_encoded_and_inside_containers(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text(f"2026 INFO request key={SECRET} done\n")
    (tmp_path / "access.log").write_text(f"GET /v1/x?k={quote(SECRET, safe='')}\n")
    (tmp_path / "snapshot.json.gz").write_bytes(gzip.compress(f'{{"k": "{SECRET}"}}'.encode()))
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("env/docker/Dockerfile", f"ENV KEY={SECRET}\n")
    (tmp_path / "bento.zip").write_bytes(packed.getvalue())
    table = pa.table({"ticker": ["AAPL"] * 200, "source": [f"upload by {SECRET}"] * 200})
    pq.write_table(table, tmp_path / "part.parquet", compression="zstd")

    found = scanner()
    found.scan_tree(tmp_path)
    where = {(leak.where.removeprefix(f"{tmp_path}/"), leak.form) for leak in found.leaks}
    assert {
        ("app.log", "raw"),
        ("access.log", "url"),
        ("snapshot.json.gz!gunzip", "raw"),
        ("bento.zip!env/docker/Dockerfile", "raw"),
        ("part.parquet!rows", "raw"),  # read back: its pages may be compressed
    } <= where
    assert {name.split("!")[0] for name, _ in where} == {
        "app.log",
        "access.log",
        "snapshot.json.gz",
        "bento.zip",
        "part.parquet",
    }
    assert found.files == 5
    assert "LEAK client key (url) in" in found.report()
    assert SECRET not in found.report()  # the report names the secret, never shows it


def test_a_value_cut_in_the_middle_is_found_by_its_head_or_tail() -> None:
    secret = "fs_LEAKCANARYc" + "Q7w-x_P2" * 4  # 46 characters, as `api-key new` makes them
    found = scanner_of(secret)
    # What pydantic writes for a string past 50 characters: its start and end around '...'.
    found.scan_text("log", f"input_value='{secret + 'xyz'}'"[:38] + "..." + secret[-23:])
    assert [leak.form for leak in found.leaks] in (["head"], ["tail"])


def test_encoded_forms_are_what_the_encoders_write() -> None:
    forms = encoded_forms("ab/c+")
    assert forms["raw"] == b"ab/c+"
    assert forms["url"] == b"ab%2Fc%2B"
    assert forms["base64+0"] in base64.b64encode(b"ab/c+")
