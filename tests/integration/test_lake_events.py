"""Corporate events in a real lake: stored in the events table, prices adjusted to the
hand-computed series whichever came first, re-adjustments audited as corrections, and a split
with no event named at ingest."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from finsimples.calendars import next_sessions
from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from finsimples.settings import Settings
from jobs.train import leave_out_renamed
from tests.b3 import CorporateYear, Quote, corporate_year, write_cotahist

pytestmark = pytest.mark.integration
TODAY = date(2026, 11, 30)
YEAR = corporate_year(next_sessions("BVMF", date(2022, 4, 29), 6))


def events_file(folder: Path, text: str, name: str = "eventos.csv") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def adjusted(lake: Lake) -> dict[str, list[float]]:
    prices = lake.read_prices()
    return {t: rows["adj_close"].tolist() for t, rows in prices.groupby("ticker")}


def assert_expected(lake: Lake, year: CorporateYear) -> None:
    found = adjusted(lake)
    assert set(found) == set(year.expected)
    for ticker, values in year.expected.items():
        assert found[ticker] == pytest.approx(values, rel=1e-12), ticker
    closes = {t: r["close"].tolist() for t, r in lake.read_prices().groupby("ticker")}
    assert closes == year.closes  # as traded


def test_events_after_the_prices_readjust_the_history_as_a_correction(
    lake: Lake, tmp_path: Path
) -> None:
    zipped = write_cotahist(tmp_path, "COTAHIST_A2022", YEAR.quotes())
    ingest_files(lake, [zipped], today=TODAY)
    assert adjusted(lake)["PETR4"] == YEAR.closes["PETR4"]  # no events yet: as traded

    report = ingest_files(lake, [events_file(tmp_path, YEAR.events_csv)], today=TODAY)

    assert report.events == 5
    assert report.readjusted == ["ITUB4", "PETR4", "VALE3"]
    assert "5 corporate event(s) stored; history re-adjusted for ITUB4, PETR4, VALE3" in (
        report.summary()
    )
    assert_expected(lake, YEAR)
    stored = lake.events()
    assert stored[stored["ticker"] == "PETR4"]["kind"].tolist() == ["split", "dividend"]
    corrections = lake.corrections()
    petr = corrections[corrections["ticker"] == "PETR4"]
    assert len(petr) == 4  # the four rows before the dividend's ex-date
    assert petr["adj_close_old"].tolist() == YEAR.closes["PETR4"][:4]
    assert petr["adj_close_new"].tolist() == pytest.approx(YEAR.expected["PETR4"][:4])
    assert set(petr["source"]) == {"re-adjusted by eventos.csv"}
    again = ingest_files(lake, [events_file(tmp_path, YEAR.events_csv)], today=TODAY)
    assert (again.events, again.readjusted, again.write.version) == (0, [], None)


def test_prices_after_the_events_whole_or_day_by_day_give_the_same_series(
    tmp_path: Path,
) -> None:
    whole = Lake.from_settings(Settings(lake_uri=str(tmp_path / "whole")))
    ingest_files(whole, [events_file(tmp_path, YEAR.events_csv)], today=TODAY)
    assert whole.events()["ticker"].nunique() == 3  # stored before any price
    ingest_files(whole, [write_cotahist(tmp_path, "COTAHIST_A2022", YEAR.quotes())], today=TODAY)
    assert_expected(whole, YEAR)

    daily = Lake.from_settings(Settings(lake_uri=str(tmp_path / "daily")))
    ingest_files(daily, [events_file(tmp_path, YEAR.events_csv)], today=TODAY)
    for day in YEAR.days:  # B3's daily files, each crossing or not an ex-date
        path = write_cotahist(tmp_path, f"COTAHIST_D{day:%d%m%Y}", YEAR.quotes([day]))
        ingest_files(daily, [path], today=TODAY)
    assert_expected(daily, YEAR)
    np.testing.assert_array_equal(
        daily.read_prices()["adj_close"].to_numpy(), whole.read_prices()["adj_close"].to_numpy()
    )


def test_a_changed_event_readjusts_only_its_ticker(tmp_path: Path) -> None:
    lake = Lake.from_settings(Settings(lake_uri=str(tmp_path / "lake")))
    ingest_files(
        lake,
        [
            write_cotahist(tmp_path, "COTAHIST_A2022", YEAR.quotes()),
            events_file(tmp_path, YEAR.events_csv),
        ],
        today=TODAY,
    )
    assert_expected(lake, YEAR)
    fixed = YEAR.events_csv.replace(f"PETR4,{YEAR.days[4]},dividend,0.5", "")
    fixed += f"PETR4,{YEAR.days[4]},dividend,0.55\n"

    report = ingest_files(lake, [events_file(tmp_path, fixed, "fix.csv")], today=TODAY)

    assert (report.events, report.readjusted) == (1, ["PETR4"])
    factor = 1 - 0.55 / 5.5
    expected = [10 * 0.5 * factor, 10.5 * 0.5 * factor, 5.4 * factor, 5.5 * factor, 5.1, 5.2]
    assert adjusted(lake)["PETR4"] == pytest.approx(expected, rel=1e-12)
    assert adjusted(lake)["VALE3"] == pytest.approx(YEAR.expected["VALE3"], rel=1e-12)


def test_a_split_with_no_event_is_named_at_ingest_and_its_event_clears_it(
    tmp_path: Path,
) -> None:
    lake = Lake.from_settings(Settings(lake_uri=str(tmp_path / "lake")))
    days = next_sessions("BVMF", date(2022, 2, 1), 30)
    rng = np.random.default_rng(7)
    closes = 40 * np.exp(np.cumsum(rng.normal(0, 0.01, 30)))
    closes[20:] /= 2
    quotes = [Quote(day, "MGLU3", round(c, 2)) for day, c in zip(days, closes, strict=True)]

    report = ingest_files(lake, [write_cotahist(tmp_path, "COTAHIST_A2022", quotes)], today=TODAY)

    assert [(j.ticker, j.date.date(), j.n) for j in report.jumps] == [("MGLU3", days[20], 2)]
    assert "unexplained jump: MGLU3 moved x0.491" in report.summary()
    assert f"on {days[20]}, like a 2:1 split, and no event explains it" in report.summary()
    text = f"ticker,ex_date,kind,value\nMGLU3,{days[20]},split,2\n"
    explained = ingest_files(lake, [events_file(tmp_path, text)], today=TODAY)
    assert explained.jumps == []
    assert explained.readjusted == ["MGLU3"]


@pytest.mark.parametrize("order", ["events first", "prices first"])
def test_a_renamed_company_keeps_its_history_under_its_new_code(tmp_path: Path, order: str) -> None:
    lake = Lake.from_settings(Settings(lake_uri=str(tmp_path / "lake")))
    days = YEAR.days
    closes = [40.0, 41.0, 40.5, 42.0, 43.0, 42.5]
    quotes = [
        Quote(day, "ELET3" if i < 3 else "AXIA3", closes[i], name="ELETROBRAS")
        for i, day in enumerate(days)
    ]
    text = (
        "ticker,ex_date,kind,value\n"
        f"ELET3,{days[1]},dividend,0.41\n"  # previous close 40.00: factor 0.98975
        f"ELET3,{days[3]},rename,AXIA3\n"
        f"AXIA3,{days[4]},jcp,0.42\n"  # previous close 42.00: factor 0.99
    )
    prices = write_cotahist(tmp_path, "COTAHIST_A2022", quotes)
    first, second = (
        (events_file(tmp_path, text), prices)
        if order == "events first"
        else (prices, events_file(tmp_path, text))
    )
    ingest_files(lake, [first], today=TODAY)

    report = ingest_files(lake, [second], today=TODAY)

    assert "AXIA3" in report.readjusted
    axia = lake.read_prices(["AXIA3"])
    assert axia["date"].dt.date.tolist() == days  # ELET3's three sessions, then its own
    assert axia["close"].tolist() == closes
    dividend, jcp = 1 - 0.41 / 40.0, 1 - 0.42 / 42.0
    expected = [
        40.0 * dividend * jcp,
        41.0 * jcp,
        40.5 * jcp,
        42.0 * jcp,
        43.0,
        42.5,
    ]
    assert axia["adj_close"].tolist() == pytest.approx(expected, rel=1e-12)
    assert set(axia["source"][:3]) == {f"renamed from ELET3 by {second.name}"}
    assert lake.read_prices(["ELET3"])["close"].tolist() == closes[:3]  # the old code stays


def test_training_leaves_the_old_code_of_a_rename_out(tmp_path: Path) -> None:
    lake = Lake.from_settings(Settings(lake_uri=str(tmp_path / "lake")))
    days = YEAR.days
    quotes = [Quote(day, "ELET3" if i < 3 else "AXIA3", 40.0 + i) for i, day in enumerate(days)]
    text = f"ticker,ex_date,kind,value\nELET3,{days[3]},rename,AXIA3\n"
    ingest_files(
        lake,
        [write_cotahist(tmp_path, "COTAHIST_A2022", quotes), events_file(tmp_path, text)],
        today=TODAY,
    )

    kept, left_out = leave_out_renamed(lake.read_prices(), lake.events())

    assert left_out == ["ELET3"]
    assert kept["ticker"].unique().tolist() == ["AXIA3"]
    assert kept["close"].tolist() == [40.0, 41.0, 42.0, 43.0, 44.0, 45.0]  # the whole history
