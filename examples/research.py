"""A month of hourly candles and a point-in-time training set from polyfarm, and a chart.

    python examples/research.py --token <token id> [--token ...] \\
        [--start 2026-03-01] [--end 2026-04-01] [--out candles.png]

Reads the database and the lake that polyfarm's settings name (``POLYFARM_DATABASE_URL``,
``POLYFARM_LAKE__URL``, ...; the embedded database by default). A market id in place of a token
id means all of its tokens.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a file, no screen needed
import matplotlib.pyplot as plt
import polars as pl

import polyfarm.data as pf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token", action="append", required=True, help="token or market id")
    parser.add_argument("--start", default="2026-03-01")
    parser.add_argument("--end", default="2026-04-01")
    parser.add_argument("--out", type=Path, default=Path("candles.png"))
    args = parser.parse_args()

    with pf.Farm.from_settings() as farm:
        candles = farm.candles(args.token, "1h", args.start, args.end)
        training = farm.training_set(
            args.token, args.start, args.end, label="price", horizon=timedelta(hours=1)
        )
    print(f"candles: {candles.height} hourly bars of {candles['token_id'].n_unique()} tokens")
    print(f"training set: {training.height} rows, {training.width} columns")
    if training.height:
        correlation = training.select(pl.corr("return_1h", "label_change")).item()
        print(f"correlation of the last hour's return with the next hour's change: {correlation}")

    figure, axes = plt.subplots(figsize=(10, 4))
    for token, bars in candles.partition_by("token_id", as_dict=True).items():
        axes.plot(bars["bucket"].to_list(), bars["close"].to_list(), label=str(token[0])[:12])
    axes.set_ylabel("price (hourly close)")
    axes.legend(loc="best")
    figure.tight_layout()
    figure.savefig(args.out, dpi=100)
    print(f"chart: {args.out}")


if __name__ == "__main__":
    main()
