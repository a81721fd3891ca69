"""The Parquet lake: sealed days of every time series, with a manifest that proves them."""
