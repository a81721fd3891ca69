"""Backfill: what the venue still serves of the past, fetched, stored apart from the live
series and recorded as done (``polyfarm backfill``, the first start of ``polyfarm collect``,
and the minute-grid repair job of the daemon)."""
