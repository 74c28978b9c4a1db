"""The files users really have: pandas' date-indexed CSV, a named date column, Brazilian
spreadsheet exports and B3's COTAHIST; each with its broken variant."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from finsimples.ingest import IngestError, read_price_file

DATA = Path(__file__).resolve().parents[2] / "data"
TODAY = date(2026, 11, 30)


def read(name: str, **kwargs: object) -> pd.DataFrame:
    return read_price_file(DATA / name, today=TODAY, **kwargs)  # type: ignore[arg-type]


def problem(name: str, **kwargs: object) -> str:
    with pytest.raises(IngestError) as info:
        read(name, **kwargs)
    message = str(info.value)
    assert message.endswith("nothing was written to the lake")
    return message


def test_an_unnamed_first_column_of_dates_is_the_date(tmp_path: Path) -> None:
    frame = read("formats/indexed.csv")
    assert set(frame["ticker"]) == {"AAPL", "MSFT"}
    assert frame["date"].min() == pd.Timestamp("2024-01-02")
    assert len(frame) == 8
    # What pandas itself writes for a date-indexed frame reads back the same.
    wide = pd.read_csv(DATA / "formats/indexed.csv", index_col=0, parse_dates=True)
    wide.to_csv(tmp_path / "again.csv")
    again = read_price_file(tmp_path / "again.csv", today=TODAY)
    pd.testing.assert_frame_equal(
        again.drop(columns="source"), frame.drop(columns="source"), check_like=True
    )


def test_an_unnamed_first_column_of_row_numbers_is_still_dropped() -> None:
    frame = read("formats/AAPL.csv")
    assert frame["date"].min() == pd.Timestamp("2022-12-21")


def test_date_column_names_the_date() -> None:
    frame = read("formats/custom_dates.csv", ticker="ITUB4", date_column="trade_day")
    assert frame["date"].tolist() == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]
    other = read("formats/custom_dates.csv", ticker="ITUB4", date_column="price_date")
    assert other["date"].min() == pd.Timestamp("2024-01-01")
    message = problem("formats/custom_dates.csv", ticker="ITUB4", date_column="Day")
    assert "--date-column 'Day' is not a column (the header is 'trade_day,price_date,close')" in (
        message
    )
    assert "pass --date-column NAME" in problem("formats/custom_dates.csv", ticker="ITUB4")


def test_brazilian_export_with_semicolons_and_comma_decimals() -> None:
    frame = read("formats/BBAS3.csv")
    assert set(frame["ticker"]) == {"BBAS3"}
    assert frame["date"].tolist() == [pd.Timestamp(f"2024-01-0{d}") for d in (2, 3, 4)]
    assert frame["close"].tolist() == [59.96, 60.85, 59.31]
    assert frame["high"].iloc[1] == 61.05
    assert frame["volume"].tolist() == [1_234_500, 2_001_000, 987_600]


def test_brazilian_export_with_text_in_a_price_names_line_and_column() -> None:
    message = problem("bad/BBAS3_text_decimal.csv", ticker="BBAS3")
    assert "BBAS3_text_decimal.csv, line 3, column 'Fechamento': value 'sessenta': " in message


def test_cotahist_reads_the_cash_market_quotes() -> None:
    frame = read("formats/COTAHIST_D20240103.TXT")
    assert sorted(set(frame["ticker"])) == ["MGLU3", "PETR4", "VALE3"]  # no options, no 020
    petr = frame[frame["ticker"] == "PETR4"].reset_index(drop=True)
    assert petr["date"].tolist() == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]
    assert petr["close"].tolist() == [37.77, 38.66]
    assert petr["adj_close"].tolist() == [37.77, 38.66]  # COTAHIST prices are not adjusted
    assert petr[["open", "high", "low"]].iloc[0].tolist() == [37.5, 37.85, 37.31]
    assert petr["volume"].tolist() == [29437400, 53089200]
    assert frame.attrs["exchange"] == "BVMF"
    assert frame.attrs["names"]["PETR4"] == "PETROBRAS PN N2"


def test_a_truncated_cotahist_is_refused() -> None:
    message = problem("bad/COTAHIST_truncated.TXT")
    assert "no trailer record (type 99): the file is truncated" in message


def test_a_cotahist_price_with_letters_names_line_and_field() -> None:
    message = problem("bad/COTAHIST_bad_price.TXT")
    assert "COTAHIST_bad_price.TXT, line 3, column 'PREULT': value '00000000037X7'" in message


def test_a_cotahist_line_of_the_wrong_length_is_refused(tmp_path: Path) -> None:
    text = (DATA / "formats/COTAHIST_D20240103.TXT").read_text(encoding="latin-1")
    lines = text.splitlines()
    lines[1] = lines[1][:200]
    (tmp_path / "COTAHIST_short.TXT").write_text("\n".join(lines) + "\n", encoding="latin-1")
    with pytest.raises(IngestError, match="line 2: has 200 characters; COTAHIST records have 245"):
        read_price_file(tmp_path / "COTAHIST_short.TXT", today=TODAY)
