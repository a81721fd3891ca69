"""The real-time stream: the market WebSocket recorded without holes it does not know about.

connection.py   one shard's socket: reconnects, the data watchdog, dynamic subscriptions
shards.py       which market rides on which connection (pure)
subscriptions.py  connections follow the catalogue; from when each market is wanted
ingest.py       the receive path: messages → live books, fills, rows (synchronous)
livebook.py     one token's L2 book and the venue hash (pure)
trades.py       fill identity shared by the WebSocket and the Data API (pure)
coverage.py     lost windows: drops, stalls, restarts, late subscriptions (pure)
repair.py       lost windows refilled from the Data API; ``feed_gaps`` bookkeeping
bookcheck.py    hash checks, REST re-fetches and cross-checks of live books
rolling.py      the last hour of fills and minute prices per token (pure)
fills.py        stored fills into the rolling windows; whale events and their impact
losses.py       lost delta windows and unreadable frames, kept until recorded
features.py     the ``market_features`` maths (pure)
whales.py       whale tiers and price impact (pure)
cadence.py      book snapshots and feature rows at each tier's cadence
lifecycle.py    ``new_market`` / ``market_resolved`` into the database
sink.py         bounded write queues and their flusher
counts.py       what the stream counts, typed (messages by class, ``StreamEvent``)
housekeeping.py the once-a-second chore loop, heartbeat, silent-asset probes
service.py      ``StreamService``: everything above, owned by one TaskGroup
"""
