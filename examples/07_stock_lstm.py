"""A stock-style forecast: an LSTM reads the last 60 closing values of a CSV and predicts the next one (Keras style).

Data: any CSV with a date column and a `Close` column (pass `--csv prices.csv`). Without one, the
script writes a real series in that format: statsmodels' bundled Mauna Loa CO2 record (weekly,
1958-2001, 2,284 values; the 59 missing weeks interpolated) as `examples-output/co2.csv`.

What it shows, the notes' recipe with its leak fixed: split by time (the last 20% is the test span,
never shuffled into training), fit `MinMaxScaler` on the training span only, cut 60-step windows
`(N, 60, 1)`, stack `LSTM(50, return_sequences=True)` -> `LSTM(50)` -> `Dense(1)`, undo the
scaling, and compare the test RMSE with the naive forecast "tomorrow = today", the baseline any
price model has to beat.

    python examples/07_stock_lstm.py                    # 20 epochs
    python examples/07_stock_lstm.py --quick            # the first 300 values, 1 epoch
    python examples/07_stock_lstm.py --csv prices.csv   # your own Date,Close file

Full run (seed 0, CO2): LSTM test RMSE 0.720 ppm vs 0.513 for "tomorrow = today": the LSTM loses
to the naive forecast, as it usually does on a smooth series, and the script says so.
"""

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.preprocessing import MinMaxScaler

from dlpipe.keras import Sequential, callbacks, layers, utils

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="a short slice and 1 epoch")
parser.add_argument("--csv", help="a CSV with a date column and a Close column")
args = parser.parse_args()
quick = args.quick or os.environ.get("DLPIPE_EXAMPLE_QUICK") == "1"
utils.set_random_seed(0)
out = Path("examples-output")
out.mkdir(exist_ok=True)

# 1. The CSV, as a price file would look.
csv = args.csv
if csv is None:
    import statsmodels.api as sm

    co2 = sm.datasets.co2.load_pandas().data["co2"].interpolate()
    csv = out / "co2.csv"
    pd.DataFrame({"Date": co2.index.date, "Close": co2.to_numpy()}).to_csv(csv, index=False)
prices = pd.read_csv(csv, parse_dates=[0])
prices = prices.sort_values(prices.columns[0])  # oldest first: windows run forward in time
close = prices["Close"].to_numpy("float32").reshape(-1, 1)
if quick:
    close = close[:300]
print(f"{len(close)} values from {csv}")

# 2. Split by time, then scale with the training span's min and max only.
steps = 60
cut = int(len(close) * 0.8)
scaler = MinMaxScaler().fit(close[:cut])
scaled = scaler.transform(close)


def windows(series, start, stop):
    """Inputs series[t-60:t] and targets series[t] for every t in [start, stop)."""
    X = np.stack([series[t - steps : t] for t in range(start, stop)])  # (N, 60, 1)
    return X, series[start:stop, 0]


X_train, y_train = windows(scaled, steps, cut)
X_test, y_test = windows(scaled, cut, len(scaled))  # test inputs may look back into training
print(f"train windows {X_train.shape}, test windows {X_test.shape}")

# 3. The notes' network.
model = Sequential(
    [
        layers.Input(shape=(steps, 1)),
        layers.LSTM(50, return_sequences=True),  # (N, 60, 50): every step goes to the next LSTM
        layers.Dropout(0.2),
        layers.LSTM(50),  # (N, 50): the last step only
        layers.Dropout(0.2),
        layers.Dense(1),
    ]
)
model.compile(optimizer="adam", loss="mean_squared_error")
model.fit(
    X_train,
    y_train,
    epochs=1 if quick else 20,
    batch_size=32,
    validation_split=0.1,  # the last 10% of the training windows, in time order
    verbose=0,
    callbacks=[callbacks.EarlyStopping(patience=5, restore_best_weights=True)],
)

# 4. Back to prices, and the baseline.
predicted = scaler.inverse_transform(model.predict(X_test, verbose=0)).ravel()
actual = close[cut:, 0]
naive = close[cut - 1 : -1, 0]  # yesterday's close
rmse = np.sqrt(np.mean((predicted - actual) ** 2))
naive_rmse = np.sqrt(np.mean((naive - actual) ** 2))
pd.DataFrame(
    {"Date": prices.iloc[cut : len(close), 0], "actual": actual, "lstm": predicted}
).to_csv(out / "lstm_forecast.csv", index=False)
print(f"naive (yesterday's value) test RMSE: {naive_rmse:.3f}")
print(f"LSTM test RMSE: {rmse:.3f}")
# A model that loses to "tomorrow = today" has learnt nothing worth using: on smooth or random-walk
# series (most prices) that is the usual outcome, and the honest one to report.
print("the LSTM", "beats" if rmse < naive_rmse else "does NOT beat", "the naive forecast")
print(f"wrote {out / 'lstm_forecast.csv'}")
