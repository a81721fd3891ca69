-- What the Parquet lake holds for certain: per time-series partition span (a day, or a quarter
-- day of book_changes on plain PostgreSQL), how many rows the lake's verified file has of it.
-- Written by `polyfarm lake export` once a day's file is in the lake and read back equal to its
-- manifest entry; read by retention, which on plain PostgreSQL drops a partition only when its
-- row count equals what the lake holds of its span (retention.archive_before_drop). The
-- reader role reads it by the default privileges of 0008.
CREATE TABLE lake_archive (
    storage_table       text NOT NULL,               -- price_points, book_changes, ...
    span_start          timestamptz NOT NULL,
    span_end            timestamptz NOT NULL,
    day                 date NOT NULL,               -- the lake partition holding the span
    rows                bigint NOT NULL,
    sha256              text NOT NULL,               -- of the day's file
    lake                text NOT NULL,               -- where: the lake's URL
    verified_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (storage_table, span_start),
    CHECK (span_end > span_start)
);
