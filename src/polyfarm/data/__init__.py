"""Research access to what polyfarm collected: DataFrames of candles, trades, books, features
and custom bars, from the database and the Parquet lake alike."""
