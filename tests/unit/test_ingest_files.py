"""Reading and validating the price files users have (no lake involved)."""

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finsimples.ingest import IngestError, read_price_file, select_next_day, select_until

DATA = Path(__file__).resolve().parents[1] / "data"
TODAY = date(2026, 11, 25)


def read(name: str, **options: object) -> pd.DataFrame:
    return read_price_file(DATA / name, today=TODAY, **options)  # type: ignore[arg-type]


def test_ohlcv_export_with_unnamed_index_takes_ticker_from_file_name() -> None:
    frame = read("formats/AAPL.csv")
    assert list(frame["ticker"].unique()) == ["AAPL"]
    assert len(frame) == 5
    first = frame.iloc[0]
    assert first["date"] == pd.Timestamp("2022-12-21")
    assert (first["open"], first["close"], first["adj_close"]) == (132.98, 135.45, 135.057)
    assert first["volume"] == 85928000
    assert set(frame["source"]) == {"AAPL.csv"}


def test_ticker_option_overrides_the_file_name() -> None:
    assert set(read("formats/AAPL.csv", ticker="aapl34")["ticker"]) == {"AAPL34"}


def test_export_without_adj_close_uses_close_and_skips_null_rows() -> None:
    frame = read("formats/petr4.sa.csv")
    assert set(frame["ticker"]) == {"PETR4"}  # Yahoo's B3 suffix stripped
    # Dates carry a time and a UTC offset (yfinance); the trading day is what was written.
    assert list(frame["date"].dt.strftime("%Y-%m-%d")) == ["2024-01-02", "2024-01-03", "2024-01-04"]
    np.testing.assert_array_equal(frame["adj_close"], frame["close"])


def test_wide_file_treats_empty_cells_as_missing() -> None:
    frame = read("formats/wide_gaps.csv")
    assert sorted(frame["ticker"].unique()) == ["AAPL", "AMD", "BF-B"]
    assert len(frame) == 5
    assert frame["close"].isna().all()


def test_long_file_with_symbol_column() -> None:
    frame = read("formats/long.csv")
    assert sorted(frame["ticker"].unique()) == ["BRK.B", "VALE3"]
    assert frame.loc[frame["ticker"] == "VALE3", "adj_close"].tolist() == [77.19, 75.71]


def test_day_first_dates_with_a_format() -> None:
    frame = read("formats/ITUB4.csv", date_format="%d/%m/%Y")
    assert list(frame["date"]) == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]


def test_parquet_with_a_date_index(tmp_path: Path) -> None:
    source = read("formats/AAPL.csv")
    frame = source.set_index("date")[["open", "high", "low", "close", "adj_close", "volume"]]
    frame.columns = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
    frame.index.name = "Date"
    path = tmp_path / "AAPL.parquet"
    frame.to_parquet(path)
    parsed = read_price_file(path, today=TODAY)
    pd.testing.assert_frame_equal(
        parsed.drop(columns="source"), source.drop(columns="source"), check_dtype=False
    )


def test_sample_file_is_read_whole(sample_path: Path, sample_wide: pd.DataFrame) -> None:
    frame = read_price_file(sample_path, today=TODAY)
    assert frame["ticker"].nunique() == 20
    assert frame["date"].nunique() == 8313
    assert len(frame) == sample_wide.drop(columns="Date").notna().sum().sum()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bad/missing_close.csv", "missing_close.csv: missing column 'Close' (or 'Adj Close')"),
        ("bad/no_date.csv", "no_date.csv: missing column 'Date' (the header is 'Day,AAPL')"),
        (
            "bad/bad_date.csv",
            "bad_date.csv, line 3, column 'Date': value '2022-12-32': is not a date",
        ),
        (
            "bad/negative_price.csv",
            "negative_price.csv, line 3, column 'AMD': value '-62.57': is not a positive price",
        ),
        (
            "bad/zero_price.csv",
            "zero_price.csv, line 2, column 'Close': value '0': is not a positive price",
        ),
        (
            "bad/text_price.csv",
            "text_price.csv, line 3, column 'AMD': value 'n/d': is not a number",
        ),
        (
            "bad/negative_volume.csv",
            "negative_volume.csv, line 2, column 'Volume': value '-5': is not a volume",
        ),
        (
            "bad/duplicate_day.csv",
            "duplicate_day.csv, column 'Date': duplicate rows for ticker AAPL on 2022-12-27 "
            "(line 2, line 4)",
        ),
        (
            "bad/future.csv",
            "future.csv, line 3, column 'Date': value '2099-01-02': is in the future "
            "(today is 2026-11-25)",
        ),
        (
            "bad/bad_ticker_column.csv",
            r"bad_ticker_column.csv, column 'AMD$': value 'AMD$': is not a ticker matching",
        ),
        (
            "bad/long_bad_ticker.csv",
            "long_bad_ticker.csv, line 3, column 'ticker': value 'THIS-TICKER-IS-TOO-LONG'",
        ),
        (
            "bad/my prices.csv",
            "my prices.csv: value 'MY PRICES': the ticker from the file name does not match",
        ),
        ("bad/broken.parquet", "broken.parquet: cannot be read as CSV or Parquet"),
        (
            "bad/repeated_column.csv",
            "repeated_column.csv: column 'Close' appears twice in the header (columns 2 and 3)",
        ),
        (
            "bad/windows_1252.csv",
            "windows_1252.csv: is not UTF-8 text (byte 0xe7 at offset 23); save it as UTF-8 "
            '(Excel: "CSV UTF-8")',
        ),
        ("bad/empty.csv", "empty.csv: cannot be read as CSV or Parquet: No columns to parse"),
        ("bad/ragged.csv", "ragged.csv: cannot be read as CSV or Parquet: Error tokenizing data"),
        ("bad/unclosed_quote.csv", "unclosed_quote.csv: cannot be read as CSV or Parquet: "),
        ("bad/infinite_price.csv", "line 2, column 'Close': value 'inf': is not a number"),
        (
            "bad/formula_date.csv",
            "formula_date.csv, line 2, column 'Date': value '=HYPERLINK(\"http://x\")': "
            "is not a date",
        ),
    ],
)
def test_bad_input_names_file_line_column_and_value(name: str, expected: str) -> None:
    # One-ticker files here get a valid ticker, so the problem under test is the only one.
    ticker = None if name == "bad/my prices.csv" else "KO"
    with pytest.raises(IngestError) as info:
        read(name, ticker=ticker)
    message = str(info.value)
    assert expected in message
    assert message.endswith("nothing was written to the lake")


def test_every_problem_in_a_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "KO.csv"
    path.write_text("Date,Close\n2022-12-27,-1\n2022-13-01,2\n2022-12-29,abc\n")
    with pytest.raises(IngestError) as info:
        read_price_file(path, today=TODAY)
    assert [p.line for p in info.value.problems] == ["line 3", "line 2", "line 4"]


def test_replay_selects_until_a_day_then_the_next_day() -> None:
    frame = read("formats/AAPL.csv")
    first = select_until(frame, date(2022, 12, 22))
    assert first["date"].max() == pd.Timestamp("2022-12-22")
    watermark = {"AAPL": date(2022, 12, 22)}
    step = select_next_day(frame, watermark)
    assert list(step["date"]) == [pd.Timestamp("2022-12-23")]
    assert select_next_day(frame, {"AAPL": date(2022, 12, 28)}).empty


def test_next_day_lets_a_lagging_ticker_catch_up() -> None:
    frame = read("formats/wide_gaps.csv")
    step = select_next_day(frame, {"AAPL": date(2022, 12, 27), "AMD": date(2022, 12, 27)})
    assert sorted(step["ticker"]) == ["AAPL", "AMD", "BF-B"]
    assert step["date"].eq(pd.Timestamp("2022-12-28")).all()
