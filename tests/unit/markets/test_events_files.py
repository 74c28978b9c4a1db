"""Corporate events files in both forms: English CSV and the Portuguese spreadsheet."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from finsimples.events import is_events_file, read_events_file
from finsimples.ingest import IngestError


def test_the_english_form(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "ticker,ex_date,kind,value\n"
        "PETR4,2022-05-04,split,2\n"
        "VALE3.SA,2022-05-05,reverse_split,10\n"
        "ITUB4,2022-05-06,jcp,0.41\n"
        "ELET3,2022-05-09,rename,AXIA3\n"
    )
    assert is_events_file(path)
    frame = read_events_file(path)
    assert frame["ticker"].tolist() == ["PETR4", "VALE3", "ITUB4", "ELET3"]
    assert frame["kind"].tolist() == ["split", "reverse_split", "jcp", "rename"]
    assert frame["value"].tolist()[:3] == [2.0, 10.0, 0.41]
    assert frame["new_ticker"].tolist() == [None, None, None, "AXIA3"]
    assert frame["ex_date"].tolist()[0] == pd.Timestamp("2022-05-04")
    assert set(frame["source"]) == {"events.csv"}


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_the_portuguese_spreadsheet_form(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "eventos.csv"
    path.write_bytes(
        (
            "Ticker;Data Ex;Tipo;Valor\n"
            "PETR4;04/05/2022;Desdobramento;2\n"
            "VALE3;05/05/2022;grupamento;10\n"
            "ITUB4;06/05/2022;Bonificação;0,1\n"
            "BBAS3;09/05/2022;Dividendo;1,2345\n"
            "BBAS3;10/05/2022;JCP;0,45\n"
        ).encode(encoding)
    )
    assert is_events_file(path)
    frame = read_events_file(path)
    assert frame["kind"].tolist() == ["split", "reverse_split", "bonus", "dividend", "jcp"]
    assert frame["value"].tolist() == [2.0, 10.0, 0.1, 1.2345, 0.45]
    assert frame["ex_date"].tolist()[3] == pd.Timestamp("2022-05-09")


def test_a_price_file_is_not_an_events_file(tmp_path: Path) -> None:
    path = tmp_path / "PETR4.csv"
    path.write_text("Date,Close\n2022-05-04,30\n")
    assert not is_events_file(path)


def test_every_bad_cell_is_named(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "ticker,ex_date,kind,value\n"
        "PETR4,2022-13-04,split,2\n"
        "PETR4,2022-05-04,spin-off,2\n"
        "VALE3,2022-05-05,reverse_split,0.1\n"
        "ITUB4,2022-05-06,dividend,abc\n"
        "ELET3,2022-05-09,rename,ELET3\n"
    )
    with pytest.raises(IngestError) as info:
        read_events_file(path)
    message = str(info.value)
    assert "events.csv, line 2, column 'ex_date': value '2022-13-04': is not a date" in message
    assert "line 3, column 'kind': value 'spin-off': is not an event kind (expected split" in (
        message
    )
    assert "line 4, column 'value': value '0.1': is not a reverse_split factor (expected a " in (
        message
    )
    assert "line 5, column 'value': value 'abc': is not a cash amount per share" in message
    assert "line 6, column 'value': value 'ELET3': is not the new code of a rename" in message
    assert message.endswith("nothing was written to the lake")


def test_the_same_event_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "ticker,ex_date,kind,value\nPETR4,2022-05-04,split,2\nPETR4,2022-05-04,split,3\n"
    )
    with pytest.raises(IngestError, match=r"split of PETR4 on 2022-05-04 twice \(line 2, line 3\)"):
        read_events_file(path)
