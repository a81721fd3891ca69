-- Book changes of a market's two tokens stored once where the venue sends one as the mirror of
-- the other.
--
-- A market's two tokens trade against one book (reference §3.4): a bid at p on one token is
-- an ask at 1 - p on the other, and a price_change message carries an item for each, with
-- that token's own best bid and ask. Half of all book_changes rows said nothing the other
-- half did not. A row may now stand for two: mirror_seq set says that the pair's other token
-- (token_mirrors) had in the same message the exact mirror of this change: the other side,
-- price 1 - price, the same size, best bid 1 - best ask, best ask 1 - best bid, the same
-- times, and seq mirror_seq (its own delta_seq, which is a digest and cannot be computed
-- here). The writer folds only items whose every value matches (polyfarm.store.mirrors), so
-- book_deltas gives back both rows exactly as they came. Rows stored before this migration
-- stay as they are: a view row comes from either form.
--
-- token_mirrors: the pairs, the lower sid first; a token is in one pair at most.
--
-- mirror_folding: from when the writers fold (one row; NULL: not yet). Two collectors may
-- store the same messages. One from before this migration stores both items, one after it
-- a folded row: were both at work at once, the older one's second row would sit beside the
-- newer one's folded row and the view would show that change twice. So folding starts at a
-- time every newer collector reads before it comes (fold_from, a few minutes ahead), set once
-- no live instance (instance_health) is missing from mirror_writers, the instances that know
-- how to fold. A database with no instance yet folds from the start.

CREATE TABLE token_mirrors (
    token_sid           integer PRIMARY KEY,
    mirror_sid          integer NOT NULL UNIQUE,
    CHECK (mirror_sid > token_sid)
);

CREATE TABLE mirror_writers (
    instance            text PRIMARY KEY,
    seen_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mirror_folding (
    only_row            boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    fold_from           timestamptz
);
INSERT INTO mirror_folding (fold_from)
SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM instance_health) THEN '-infinity'::timestamptz END;

ALTER TABLE book_changes ADD COLUMN mirror_seq integer;

-- Each half joins token_keys itself, so that a read by token id (or sid) reaches the index
-- of the right table in both: of the stored rows, and of the pair's rows through token_mirrors.
CREATE OR REPLACE VIEW book_deltas AS
SELECT d.ts, k.token_id, k.market_id, d.seq,
       side_name(d.side) AS side,
       from_micros(d.price) AS price,
       from_micros(d.size) AS size,
       from_micros(d.best_bid) AS best_bid,
       from_micros(d.best_ask) AS best_ask,
       d.received_at, d.token_sid
FROM book_changes d LEFT JOIN token_keys k USING (token_sid)
UNION ALL
SELECT d.ts, k.token_id, k.market_id, d.mirror_seq,
       side_name((3 - d.side)::smallint),
       from_micros(1000000 - d.price),
       from_micros(d.size),
       from_micros(1000000 - d.best_ask),
       from_micros(1000000 - d.best_bid),
       d.received_at, m.mirror_sid
FROM book_changes d
JOIN token_mirrors m ON m.token_sid = d.token_sid
LEFT JOIN token_keys k ON k.token_sid = m.mirror_sid
WHERE d.mirror_seq IS NOT NULL;
