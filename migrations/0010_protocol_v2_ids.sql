-- Protocol V2 outcome ids. A Gamma market's ``version`` names the field that holds its trading
-- ids: ``clobTokenIds`` (v1, Conditional Tokens ids) or ``positionIds`` (v2, PositionManager
-- position ids). ``tokens.token_id`` stays the trading id that every time series uses; both id
-- sets are kept beside it so on-chain data can be joined either way.
--
-- Every row stored before this migration came from ``clobTokenIds``: those markets are v1 and
-- their trading id is their CTF id. A v2 market stored earlier under its CTF ids is corrected
-- by the next metadata scan (the token upsert replaces an outcome's id when it changes).
-- Plain ALTERs on dimension tables: one body for both flavours.

ALTER TABLE markets ADD COLUMN protocol_version text
    CHECK (protocol_version IN ('v1', 'v2'));        -- NULL: not yet known (heard of on the WebSocket)
UPDATE markets SET protocol_version = 'v1';

ALTER TABLE tokens ADD COLUMN ctf_token_id text;    -- the clobTokenIds entry, when published
ALTER TABLE tokens ADD COLUMN position_id text;     -- the positionIds entry, when published
UPDATE tokens SET ctf_token_id = token_id;

CREATE INDEX tokens_ctf_token_idx ON tokens (ctf_token_id) WHERE ctf_token_id IS NOT NULL;
CREATE INDEX tokens_position_idx ON tokens (position_id) WHERE position_id IS NOT NULL;
