"""polyfarm: farms Polymarket market data into TimescaleDB/PostgreSQL."""
