-- Records that were refused: by a parser (malformed payloads) or by the writer (values that
-- cannot be right). Nothing vanishes silently: every refusal is logged, counted and kept here.
CREATE TABLE quarantine (
    id                  bigserial PRIMARY KEY,
    received_at         timestamptz NOT NULL DEFAULT now(),
    source              text NOT NULL,               -- gamma_market, clob_book, ws_frame, trades…
    reason              text NOT NULL,
    record_key          text,                        -- an id found in the record, if any
    raw                 bytea NOT NULL               -- the payload as received (or the row)
);
CREATE INDEX quarantine_received_idx ON quarantine (received_at DESC);
CREATE INDEX quarantine_source_idx ON quarantine (source, received_at DESC);
