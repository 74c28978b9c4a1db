from datetime import date

import pytest

from finsimples.legacy.manifest import (
    Commit,
    DataFile,
    Manifest,
    TickerStats,
    dump_manifest,
    load_manifest,
    manifest_name,
    parse_manifest_version,
    utc_now,
)


def test_manifest_round_trips_through_json() -> None:
    files = (
        DataFile("prices/year=2022/1.parquet", 2022, 40, date(2022, 1, 3), date(2022, 1, 4), 1),
    )
    stats = {"PETR4": TickerStats(2, date(2022, 1, 3), date(2022, 1, 4))}
    commit = Commit("write", utc_now(), source="a.csv", new=2, added=(files[0].path,))
    manifest = Manifest().next(files, stats, commit, ("corrections/1.parquet",))
    assert load_manifest(dump_manifest(manifest)) == manifest
    assert manifest.version == 1
    assert manifest.rows == 2


def test_manifest_names_sort_like_versions() -> None:
    names = [manifest_name(v) for v in (2, 10, 1)]
    assert sorted(names) == [manifest_name(1), manifest_name(2), manifest_name(10)]
    assert parse_manifest_version("lake/_manifests/" + manifest_name(10)) == 10
    assert parse_manifest_version("lake/_manifests/.tmp-abc") is None
    assert parse_manifest_version("notes.txt") is None


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format 99"):
        load_manifest(b'{"format": 99}')


def test_overlap_of_date_ranges() -> None:
    f = DataFile("p", 2022, 1, date(2022, 3, 1), date(2022, 3, 31), 1)
    assert f.overlaps(None, None)
    assert f.overlaps(date(2022, 3, 31), None)
    assert not f.overlaps(date(2022, 4, 1), None)
    assert not f.overlaps(None, date(2022, 2, 28))
