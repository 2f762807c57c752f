"""Revenue forecast: Holt's linear exponential smoothing (statsmodels), back-tested.

Method (shown beside the forecast in the report): daily revenue is summed into periods of
the report's length; ``statsmodels.tsa.holtwinters.ExponentialSmoothing`` with an additive
trend and estimated smoothing parameters is fitted to the periods and projects the next
``HORIZON`` (a trend heading below zero is cut at 0: revenue is never negative). Its error is measured first by a back-test: the model is fitted without the
last ``HOLDOUT`` periods, forecasts them, and the mean absolute percentage error (MAPE)
against what really happened is reported.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass

HORIZON = 3
HOLDOUT = 3
MIN_TRAIN = 5
METHOD = ("Holt's linear exponential smoothing (statsmodels ExponentialSmoothing, additive trend, "
          "parameters estimated by maximum likelihood)")


@dataclass(frozen=True)
class Forecast:
    history: list[float]
    forecast: list[float]
    backtest: list[float]  # forecasts of the held-out periods
    actual: list[float]  # what the held-out periods really were
    mape: float | None  # fraction (0.12 = 12 %); None when every held-out period was 0


def mape(actual: list[float], predicted: list[float]) -> float | None:
    """Mean absolute percentage error over the periods whose actual value is not 0."""
    pairs = [(a, p) for a, p in zip(actual, predicted, strict=True) if a]
    if not pairs:
        return None
    return sum(abs(a - p) / abs(a) for a, p in pairs) / len(pairs)


def _fit_predict(series: list[float], steps: int) -> list[float]:
    import numpy as np
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    with warnings.catch_warnings():  # short series: convergence notes are expected, not news
        warnings.simplefilter("ignore")
        model = ExponentialSmoothing(np.asarray(series, dtype=float), trend="add",
                                     initialization_method="estimated")
        fitted = model.fit()
        return [max(0.0, float(v)) for v in fitted.forecast(steps)]  # revenue is never negative


def forecast(series: list[float], horizon: int = HORIZON, holdout: int = HOLDOUT) -> Forecast:
    """Forecast ``horizon`` periods after ``series`` and back-test on its last ``holdout``."""
    if len(series) < MIN_TRAIN + holdout:
        raise ValueError(f"needs at least {MIN_TRAIN + holdout} periods of history, has {len(series)}")
    train, actual = series[:-holdout], series[-holdout:]
    backtest = _fit_predict(train, holdout)
    return Forecast(list(series), _fit_predict(series, horizon), backtest, list(actual), mape(actual, backtest))


def buckets(daily: list[tuple[dt.date, float]], end: dt.date, days: int, periods: int
            ) -> list[tuple[dt.date, float]]:
    """Daily values summed into ``periods`` periods of ``days`` days ending at ``end``
    (oldest first), starting at the first period that has any data."""
    starts = [end - dt.timedelta(days=days * (periods - i)) for i in range(periods)]
    sums = [0.0] * periods
    for day, value in daily:
        index = periods - 1 - ((end - day).days - 1) // days if day < end else None
        if index is not None and 0 <= index < periods:
            sums[index] += value
    first = next((i for i, v in enumerate(sums) if v), periods)
    return list(zip(starts[first:], sums[first:], strict=True))
