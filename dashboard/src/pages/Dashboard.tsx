// The overview: headline numbers, markets by tier, the WebSocket stream, task health, tables.
import { Link } from "react-router-dom";

import type { DetailedHealth, Stats, TaskStatus } from "../api/client";
import { useHealth, useStats, useTaskStatus } from "../api/hooks";
import { TierChart } from "../components/TierChart";
import { Card, Empty, ErrorNote, Loading, Panel, StatusBadge } from "../components/ui";
import { ago, bytes, decimal, duration, int, time } from "../lib/format";

function Cards({ stats }: { stats: Stats }) {
  const rows = Object.fromEntries(stats.tables.map((t) => [t.table, t.rows]));
  return (
    <div className="cards">
      <Card
        testId="card-markets"
        label="Markets tracked"
        value={int(stats.markets_total)}
        sub={`${int(stats.markets_open)} open`}
      />
      <Card
        testId="card-snapshots"
        label="Snapshots today"
        value={int(stats.snapshots_today)}
        sub={`${int(rows.price_snapshots)} in all · ${int(stats.orderbooks_today)} books today`}
      />
      <Card
        testId="card-trades"
        label="Trades today"
        value={int(stats.trades_today)}
        sub={`${int(rows.trades)} in all`}
      />
      <Card
        testId="card-database"
        label="Database size"
        value={bytes(stats.database_size_bytes)}
        sub={`${int(stats.database_size_bytes)} bytes`}
      />
    </div>
  );
}

function WebSocketStatus({ health }: { health: DetailedHealth }) {
  const ws = health.websocket;
  return (
    <dl className="facts" data-testid="websocket-status">
      <dt>Connected shards</dt>
      <dd data-testid="ws-shards">{ws.connected_shards ?? "—"}</dd>
      <dt>Events / s</dt>
      <dd>{ws.events_per_s === null ? "—" : decimal(ws.events_per_s, 1)}</dd>
      <dt>Last event</dt>
      <dd>{ws.last_event_at ? ago(ws.last_event_at) : "none stored"}</dd>
      <dt>Messages</dt>
      <dd>{int(ws.messages_total)}</dd>
      <dt>Reconnects</dt>
      <dd>{int(ws.reconnects_total)}</dd>
      <dt>Book hashes</dt>
      <dd data-testid="ws-book-hashes">
        {(ws.book_hashes ?? []).length === 0
          ? "none checked yet"
          : (ws.book_hashes ?? [])
              .map(
                (h) =>
                  `${h.source}: ${int(h.verified)} verified, ${int(h.mismatched)} mismatched, ` +
                  `${int(h.unverifiable)} unverifiable`,
              )
              .join(" · ")}
      </dd>
      <dt>Collector metrics</dt>
      <dd>{ws.metrics_reachable ? "reachable" : "not reachable (collector not running here)"}</dd>
    </dl>
  );
}

function NextRun({ at }: { at: string | null }) {
  if (!at) return <>—</>;
  const overdue = Date.parse(at) < Date.now();
  return overdue ? <span className="overdue">overdue {ago(at).replace(" ago", "")}</span> : <>{ago(at)}</>;
}

function TaskHealth({ tasks, health }: { tasks: TaskStatus[]; health?: DetailedHealth }) {
  if (tasks.length === 0) return <Empty>No task has run yet.</Empty>;
  const stale = new Set(health?.collectors.filter((c) => c.stale).map((c) => c.collector));
  return (
    <table className="table" data-testid="task-health">
      <thead>
        <tr>
          <th>Task</th>
          <th>Last run</th>
          <th>Status</th>
          <th className="num">Duration</th>
          <th className="num">Rows</th>
          <th>Next</th>
          <th className="num">Failures 24 h</th>
        </tr>
      </thead>
      <tbody>
        {tasks.map((t) => (
          <tr key={t.task_name}>
            <td>
              <Link to={`/tasks?task=${encodeURIComponent(t.task_name)}`}>{t.task_name}</Link>
              {stale.has(t.task_name) && <span className="badge status-bad">stale</span>}
            </td>
            <td title={time(t.last_started_at)}>{ago(t.last_started_at)}</td>
            <td>
              <StatusBadge status={t.last_status} />
            </td>
            <td className="num">{duration(t.last_duration_ms)}</td>
            <td className="num">{int(t.last_rows)}</td>
            <td>
              <NextRun at={t.next_run_at} />
            </td>
            <td className="num">{int(t.failures_24h)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Tables({ stats }: { stats: Stats }) {
  return (
    <table className="table compact" data-testid="table-stats">
      <thead>
        <tr>
          <th>Table</th>
          <th className="num">Rows</th>
          <th>Newest row</th>
        </tr>
      </thead>
      <tbody>
        {stats.tables.map((t) => (
          <tr key={t.table} data-table={t.table}>
            <td>{t.table}</td>
            <td className="num">{int(t.rows)}</td>
            <td>{t.latest ? `${time(t.latest)} (${ago(t.latest)})` : "—"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function DashboardPage() {
  const stats = useStats();
  const health = useHealth();
  const tasks = useTaskStatus();
  return (
    <div className="page">
      <h1>Dashboard</h1>
      {stats.error && <ErrorNote error={stats.error} />}
      {stats.data ? <Cards stats={stats.data} /> : <Loading />}
      <div className="grid two">
        <Panel title="Markets by tier (open)" testId="panel-tiers">
          {stats.data ? <TierChart tiers={stats.data.markets_by_tier} /> : <Loading />}
        </Panel>
        <Panel title="WebSocket stream" testId="panel-websocket">
          {health.error && <ErrorNote error={health.error} />}
          {health.data ? <WebSocketStatus health={health.data} /> : !health.error && <Loading />}
        </Panel>
      </div>
      <Panel title="Task health" testId="panel-tasks" wide>
        {tasks.error && <ErrorNote error={tasks.error} />}
        {tasks.data ? <TaskHealth tasks={tasks.data} health={health.data} /> : <Loading />}
      </Panel>
      <Panel title="Tables (as polyfarm stats --json)" testId="panel-tables" wide>
        {stats.data ? <Tables stats={stats.data} /> : <Loading />}
      </Panel>
    </div>
  );
}
