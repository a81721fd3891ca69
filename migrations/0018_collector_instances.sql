-- Two collectors (two hosts) writing into one database, so that stopping either loses nothing.
-- The time-series writes are idempotent already; what each process keeps of its own becomes
-- per instance (POLYFARM_INSTANCE, the host name by default):
--
-- * task_runs.instance: which process ran a cycle. A process that starts closes only its own
--   runs left 'running' (the other instance's may be running right now).
-- * instance_health (collector, instance): the old collector_health, per process. The stream's
--   heartbeat ("every fill vouched for until …") is per process: a restarted instance repairs
--   from its own last heartbeat, not from the other's.
-- * collector_health is now a view: per collector, the instance that succeeded last. The status
--   command, the API and the alerts read it unchanged, so a collector is stale only when every
--   instance is.
-- * markets/events.observed_at: when the metadata in a row was read from the venue. An upsert
--   never replaces a row with an older observation (a slow scan finishing after a newer one).

ALTER TABLE task_runs ADD COLUMN instance text NOT NULL DEFAULT '';
CREATE INDEX task_runs_running_idx ON task_runs (instance) WHERE status = 'running';

ALTER TABLE collector_health RENAME TO instance_health;
ALTER TABLE instance_health ADD COLUMN instance text NOT NULL DEFAULT '';
ALTER TABLE instance_health DROP CONSTRAINT collector_health_pkey;
ALTER TABLE instance_health ADD PRIMARY KEY (collector, instance);

CREATE VIEW collector_health AS
SELECT DISTINCT ON (collector)
       collector, last_run_at, last_success_at, last_error_at, last_error,
       consecutive_failures, rows_last_run, updated_at, instance
FROM instance_health
ORDER BY collector, last_success_at DESC NULLS LAST, last_run_at DESC NULLS LAST;

ALTER TABLE markets ADD COLUMN observed_at timestamptz;
UPDATE markets SET observed_at = updated_at;
ALTER TABLE markets ALTER COLUMN observed_at SET DEFAULT now();
ALTER TABLE markets ALTER COLUMN observed_at SET NOT NULL;

ALTER TABLE events ADD COLUMN observed_at timestamptz;
UPDATE events SET observed_at = updated_at;
ALTER TABLE events ALTER COLUMN observed_at SET DEFAULT now();
ALTER TABLE events ALTER COLUMN observed_at SET NOT NULL;
