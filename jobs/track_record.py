"""The track-record job: log the champion's forecasts, score the matured ones, summarize.

Lake layout (under the lake's location, beside ``prices/``)::

    track_record/forecasts/as_of=YYYY-MM-DD.parquet   the forecasts logged that day
    track_record/scores/target=YYYY-MM-DD.parquet     forecasts whose target was that day, scored
    track_record/summary.parquet                      per model version, horizon and ticker
    track_record/summary.json                         pooled per horizon: what replicas read

Every file is written whole (``Location.write_bytes``: atomic), one per day, so re-running a
day overwrites that day's files and never duplicates rows; the summaries are written last, so a
failure half-way leaves the previous summary readable (and the next run redoes the day).

Scores are recomputed each run from the logs and the lake's prices (a few thousand rows); score
files are written for the target dates that have none yet, and for the latest one. A price
corrected after its day was scored changes the summary, not the stored score file.

The core is :mod:`finsimples.track_record`; the flow is ``flows.track_record``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from finsimples.forecast import LOOKBACK_DAYS
from finsimples.lake import Lake
from finsimples.records import (
    TRACK_RECORD_DIR,
    TRACK_RECORD_SUMMARY,
    TrackRecordSummary,
    write_record,
)
from finsimples.settings import Settings
from finsimples.storage import Location
from finsimples.track_record import (
    KEYS,
    forecast_log,
    score_forecasts,
    summarize,
    summary_record,
    window_start,
)
from training.features import build_features, latest_features
from training.forecaster import QuantileForecaster

FORECASTS_DIR = f"{TRACK_RECORD_DIR}/forecasts"
SCORES_DIR = f"{TRACK_RECORD_DIR}/scores"
SUMMARY_PARQUET = f"{TRACK_RECORD_DIR}/summary.parquet"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackRecordInputs:
    """What one run needs: the champion, the lake's recent prices, the logs that may score."""

    version: str
    forecaster: QuantileForecaster
    prices: pd.DataFrame
    logs: pd.DataFrame
    scored_dates: frozenset[date]


@dataclass(frozen=True)
class TrackRecordResult:
    """The scores to store and the summaries of the window."""

    as_of: date
    scores: dict[date, pd.DataFrame]
    detail: pd.DataFrame
    summary: TrackRecordSummary


def _day_path(directory: str, key: str, day: date) -> str:
    return f"{directory}/{key}={day.isoformat()}.parquet"


def _day_of(path: str) -> date | None:
    name = path.rsplit("/", 1)[-1]
    if name.startswith(".tmp-") or "=" not in name or not name.endswith(".parquet"):
        return None
    try:
        return date.fromisoformat(name.split("=", 1)[1].removesuffix(".parquet"))
    except ValueError:
        return None


def _days(location: Location, directory: str) -> dict[date, str]:
    return {d: p for p in location.list_files(directory) if (d := _day_of(p)) is not None}


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer, compression="zstd")
    return buffer.getvalue()


def _read_parquet(location: Location, path: str) -> pd.DataFrame:
    return pq.read_table(path, filesystem=location.filesystem).to_pandas()


def lookback_days(settings: Settings) -> int:
    """Calendar days of prices a run reads: the features' window, or the scoring window
    (``coverage_window_days`` plus the longest horizon, in trading days) if longer."""
    trading = settings.alerts.coverage_window_days + max(settings.training.eval_horizons)
    return max(LOOKBACK_DAYS, int(trading * 1.6) + 30)


def read_logs(location: Location, since: date) -> pd.DataFrame:
    """Every logged forecast with an as-of date on or after ``since``."""
    frames = [
        _read_parquet(location, path)
        for day, path in sorted(_days(location, FORECASTS_DIR).items())
        if day >= since
    ]
    if not frames:
        return pd.DataFrame()
    logs = pd.concat(frames, ignore_index=True)
    return logs.drop_duplicates(list(KEYS), keep="last").reset_index(drop=True)


def load_inputs(
    settings: Settings, version: str, forecaster: QuantileForecaster
) -> TrackRecordInputs:
    """The lake's recent prices, the logs that may score in the window, the scored dates."""
    lake = Lake.from_settings(settings)
    marks = lake.watermarks()
    if not marks:
        raise ValueError(f"the lake at {lake.uri} is empty: nothing to forecast or score")
    start = max(marks.values()) - timedelta(days=lookback_days(settings))
    prices = lake.read_prices(start=start)
    return TrackRecordInputs(
        version,
        forecaster,
        prices,
        read_logs(lake.location, start),
        frozenset(_days(lake.location, SCORES_DIR)),
    )


def build_log(
    forecaster: QuantileForecaster,
    version: str,
    prices: pd.DataFrame,
    horizons: Sequence[int],
    days: Sequence[date] | None = None,
) -> pd.DataFrame:
    """The forecasts ``forecaster`` makes from ``prices``, in the track record's log format.

    Args:
        forecaster: The model (the champion).
        version: Its registry version.
        prices: Prices with at least the features' lookback before each as-of date.
        horizons: The horizons to log.
        days: As-of dates to forecast from (each ticker with a price that day); default: each
            ticker's own last date, as the API serves it (a ticker whose last feature row is
            older than its last price, a gap in its history, is not served and not logged).
    """
    features = build_features(prices)
    if days is None:
        rows = latest_features(features)
        last = prices.groupby("ticker")["date"].max()
        dated = rows.index.get_level_values("date")
        tickers = rows.index.get_level_values("ticker")
        # Only tickers priced on the day: a stale ticker's forecast was logged on its own day.
        fresh = pd.DatetimeIndex(last.reindex(tickers).to_numpy())
        today = dated.max()
        behind = sorted(last[last < today].index)
        if behind:  # stale tickers (finsimples.freshness) among them: the API refuses those
            logger.info(
                "track record: %d tickers have no price on %s and are not logged: %s",
                len(behind),
                today.date(),
                ", ".join(behind[:10]) + (" ..." if len(behind) > 10 else ""),
            )
        rows = rows[(dated == fresh) & (dated == today)]
    else:
        wanted = pd.DatetimeIndex(pd.to_datetime(list(days)))
        rows = features[features.index.get_level_values("date").isin(wanted)]
    if rows.empty:
        return pd.DataFrame()
    config = forecaster.config
    return forecast_log(
        forecaster.predict(rows),
        prices,
        model_version=version,
        horizons=horizons,
        interval_levels=tuple(config.interval_levels),  # type: ignore[arg-type]
    )


def score_window(
    logs: pd.DataFrame,
    prices: pd.DataFrame,
    scored_dates: frozenset[date],
    *,
    window_days: int,
    interval: float,
) -> TrackRecordResult:
    """Score the logs on the prices; the score files to write; the window's summaries."""
    scores = (
        score_forecasts(logs, prices)
        if not logs.empty
        else score_forecasts(pd.DataFrame(columns=["as_of", "ticker", "horizon"]), prices)
    )
    trading = sorted(pd.to_datetime(prices["date"]).dt.date.unique())
    end = max(trading)
    start = window_start(trading, end, window_days)
    detail, pooled = summarize(scores, start, end)
    latest_scored = max(scored_dates, default=None)
    to_write: dict[date, pd.DataFrame] = {}
    for key, group in scores.groupby("target_date"):
        day = pd.Timestamp(key).date()  # type: ignore[arg-type]
        later = latest_scored is not None and day > latest_scored
        if day not in scored_dates or day == end or later:
            to_write[day] = group.reset_index(drop=True)
    summary = TrackRecordSummary.model_validate(
        summary_record(
            pooled, as_of=end, window_start=start, window_days=window_days, interval=interval
        )
    )
    return TrackRecordResult(end, to_write, detail, summary)


def store_log(location: Location, log: pd.DataFrame) -> str | None:
    """Write one day's log (the day: its latest as-of date), replacing that day's file."""
    if log.empty:
        return None
    day = max(log["as_of"])
    if (log["as_of"] != day).any():
        raise ValueError(f"one day's log holds other as-of dates than {day}: {set(log['as_of'])}")
    path = location.path(_day_path(FORECASTS_DIR, "as_of", day))
    location.write_bytes(path, _parquet_bytes(log))
    return path


def store_result(location: Location, result: TrackRecordResult) -> list[str]:
    """Write the score files, then the summaries (last, so they never run ahead of them)."""
    written = []
    for day, frame in sorted(result.scores.items()):
        path = location.path(_day_path(SCORES_DIR, "target", day))
        location.write_bytes(path, _parquet_bytes(frame))
        written.append(path)
    location.write_bytes(location.path(SUMMARY_PARQUET), _parquet_bytes(result.detail))
    write_record(location, TRACK_RECORD_SUMMARY, result.summary)
    return [*written, location.path(SUMMARY_PARQUET), location.path(TRACK_RECORD_SUMMARY)]


def read_scores(location: Location) -> pd.DataFrame:
    """Every stored score file, concatenated (for inspection and tests)."""
    frames = [_read_parquet(location, p) for _, p in sorted(_days(location, SCORES_DIR).items())]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def replay_track_record(
    settings: Settings, forecaster: QuantileForecaster, version: str, days: int
) -> TrackRecordSummary:
    """Build a track record as if ``forecaster`` had served the lake's last ``days`` days.

    Logs its forecasts from each of the last ``days`` trading dates (features from the prices
    up to that date only), scores those whose targets the lake holds and writes everything to
    the lake as the daily step would. For fixtures and demos that need a real record at once.
    """
    lake = Lake.from_settings(settings)
    marks = lake.watermarks()
    if not marks:
        raise ValueError(f"the lake at {lake.uri} is empty")
    start = max(marks.values()) - timedelta(days=lookback_days(settings) + int(days * 1.6))
    prices = lake.read_prices(start=start)
    trading = sorted(pd.to_datetime(prices["date"]).dt.date.unique())
    chosen = trading[-days:]
    horizons = settings.training.eval_horizons
    log = build_log(forecaster, version, prices, horizons, chosen)
    for _, day_log in log.groupby("as_of"):
        store_log(lake.location, day_log.reset_index(drop=True))
    result = score_window(
        log,
        prices,
        frozenset(),
        window_days=settings.alerts.coverage_window_days,
        interval=float(forecaster.config.interval_coverage),
    )
    store_result(lake.location, result)
    return result.summary
