"""B3's COTAHIST files as B3 serves them: yearly, monthly and daily, zipped or not, latin-1 with
CRLF; only the round-lot cash market becomes prices; broken files refused with their reason."""

from __future__ import annotations

import zipfile
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from finsimples.cotahist import is_cotahist
from finsimples.ingest import IngestError, read_price_file
from tests.b3 import Quote, cotahist_text, write_cotahist

TODAY = date(2026, 11, 30)
D1, D2 = date(2022, 3, 3), date(2022, 3, 4)
QUOTES = [
    Quote(D1, "PETR4", 31.25, name="PETROBRAS", especi="PN      N2", volume=2_000),
    Quote(D1, "PETR4F", 31.20, market="020", name="PETROBRAS", especi="PN      N2"),
    Quote(D1, "PETRC320", 0.85, market="070", name="PETRE", especi="PN      N2"),
    Quote(D1, "MXRF11", 9.87, name="FII MAXI REN", especi="CI"),
    Quote(D1, "ALUG11", 48.10, name="INVESTO ALUG", especi="CI      ER"),
    Quote(D1, "AAPL34", 51.02, name="APPLE", especi="DRN"),
    Quote(D1, "TAEE11", 36.40, name="TAESA", especi="UNT     N2"),
    Quote(D2, "PETR4", 31.90, name="PETROBRAS", especi="PN      N2", volume=3_000),
    Quote(D2, "PETR4F", 31.88, market="020", name="PETROBRAS", especi="PN      N2"),
    Quote(D2, "PETRD330", 0.40, market="080", name="PETRE", especi="PN      N2"),
]


def read(path: Path) -> pd.DataFrame:
    return read_price_file(path, today=TODAY)


def problem(path: Path) -> str:
    with pytest.raises(IngestError) as info:
        read(path)
    message = str(info.value)
    assert message.endswith("nothing was written to the lake")
    return message


def test_a_yearly_zip_as_b3_serves_it_gives_the_cash_market_in_round_lots(tmp_path: Path) -> None:
    path = write_cotahist(tmp_path, "COTAHIST_A2022", QUOTES)

    frame = read(path)

    assert sorted(set(frame["ticker"])) == ["AAPL34", "ALUG11", "MXRF11", "PETR4", "TAEE11"]
    petr = frame[frame["ticker"] == "PETR4"]
    assert petr["close"].tolist() == [31.25, 31.9]
    assert petr["volume"].tolist() == [2_000, 3_000]
    assert petr["date"].tolist() == [pd.Timestamp(D1), pd.Timestamp(D2)]
    assert set(frame["source"]) == {"COTAHIST_A2022.ZIP"}
    assert frame.attrs["skipped"] == {"020": 2, "070": 1, "080": 1}
    kinds = frame.attrs["kinds"]
    assert (kinds["PETR4"], kinds["MXRF11"], kinds["AAPL34"], kinds["TAEE11"]) == (
        "PN",
        "CI",
        "DRN",
        "UNT",
    )


def test_the_text_alone_reads_the_same_as_the_zip(tmp_path: Path) -> None:
    zipped = read(write_cotahist(tmp_path, "COTAHIST_M032022", QUOTES))
    plain = read(write_cotahist(tmp_path, "COTAHIST_M032022", QUOTES, zipped=False))
    assert b"\r\n" in (tmp_path / "COTAHIST_M032022.TXT").read_bytes()  # as B3 writes it
    pd.testing.assert_frame_equal(zipped.drop(columns="source"), plain.drop(columns="source"))


def test_b3_file_names_and_the_header_both_say_cotahist(tmp_path: Path) -> None:
    for name in ("COTAHIST_A2022.ZIP", "COTAHIST_M012023.zip", "COTAHIST_D02012023.TXT"):
        (tmp_path / name).write_bytes(b"")
        assert is_cotahist(tmp_path / name), name
    (tmp_path / "quotes.txt").write_bytes(cotahist_text(QUOTES))
    assert is_cotahist(tmp_path / "quotes.txt")
    (tmp_path / "prices.csv").write_text("Date,Close\n")
    assert not is_cotahist(tmp_path / "prices.csv")


def test_latin1_names_are_read_as_latin1(tmp_path: Path) -> None:
    quote = Quote(D1, "ITUB4", 25.0, name="ITAÚUNIBANCO", especi="PN      N1")
    frame = read(write_cotahist(tmp_path, "COTAHIST_D02032022", [quote]))
    assert frame.attrs["names"]["ITUB4"] == "ITAÚUNIBANCO PN N1"


def test_a_truncated_zip_is_refused_as_cut_short(tmp_path: Path) -> None:
    path = write_cotahist(tmp_path, "COTAHIST_A2022", QUOTES)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = problem(path)
    assert "COTAHIST_A2022.ZIP: is not a complete ZIP archive" in message
    assert "the download was cut short" in message


def test_a_zip_holding_two_files_is_refused_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "COTAHIST_A2022.ZIP"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("COTAHIST_A2022.TXT", cotahist_text(QUOTES))
        archive.writestr("LEIAME.TXT", b"readme")
    message = problem(path)
    assert "holds 2 files (COTAHIST_A2022.TXT, LEIAME.TXT)" in message
    assert "holds exactly one COTAHIST_*.TXT" in message


def test_a_damaged_member_is_refused(tmp_path: Path) -> None:
    path = write_cotahist(tmp_path, "COTAHIST_A2022", QUOTES)
    data = bytearray(path.read_bytes())
    data[60] ^= 0xFF  # inside the compressed text: the CRC or the inflate fails
    path.write_bytes(bytes(data))
    assert "the ZIP is damaged" in problem(path)


def test_a_file_named_zip_that_is_not_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "COTAHIST_D02032022.ZIP"
    path.write_bytes(cotahist_text(QUOTES))
    assert "is named .ZIP but is not a ZIP archive" in problem(path)


def test_a_wrong_trailer_count_is_refused_with_both_numbers(tmp_path: Path) -> None:
    path = tmp_path / "COTAHIST_D02032022.TXT"
    path.write_bytes(cotahist_text(QUOTES, total=7))
    message = problem(path)
    assert "line 12, column 'TOTREG': value '00000000007'" in message
    assert "the trailer counts '00000000007' records but the file has 12 lines" in message
