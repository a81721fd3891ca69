"""What every part of the daemon means by a market: the in-process catalogue, tiers and
cadences, order-book statistics and snapshot rows, and which rows repeat the last one
written (``unchanged``).

The REST collectors (``polyfarm.collect``) and the WebSocket stream (``polyfarm.stream``) both
read these; neither owns them, so they live here, below both.
"""
