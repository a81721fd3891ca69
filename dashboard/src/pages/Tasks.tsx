// Task runs: the newest run of each task, and the history with durations, rows and errors.
import { Link, useSearchParams } from "react-router-dom";
import { Bar, BarChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";

import type { TaskRun } from "../api/client";
import { useTaskRuns, useTaskStatus } from "../api/hooks";
import { Empty, ErrorNote, Loading, Panel, Select, StatusBadge } from "../components/ui";
import { ago, clock, duration, int, time } from "../lib/format";

const STATUSES = ["", "success", "failed", "running", "cancelled"].map((s) => ({
  value: s,
  label: s || "Any status",
}));

function DurationChart({ runs }: { runs: TaskRun[] }) {
  const data = [...runs].reverse().map((r) => ({ at: r.started_at, ms: r.duration_ms ?? 0 }));
  return (
    <div className="chart" data-testid="duration-chart">
      <ResponsiveContainer width="100%" height={160}>
        <BarChart data={data} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
          <CartesianGrid stroke="#e5e7eb" vertical={false} />
          <XAxis dataKey="at" tickFormatter={clock} minTickGap={24} fontSize={12} />
          <YAxis width={60} fontSize={12} tickFormatter={(v: number) => duration(v)} />
          <Tooltip labelFormatter={(label) => time(String(label))} formatter={(v) => duration(Number(v))} />
          <Bar dataKey="ms" name="duration" fill="#2563eb" isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}

function RunTable({ runs }: { runs: TaskRun[] }) {
  return (
    <table className="table compact" data-testid="runs-table">
      <thead>
        <tr>
          <th className="num">#</th>
          <th>Task</th>
          <th>Started</th>
          <th>Status</th>
          <th className="num">Duration</th>
          <th className="num">Markets</th>
          <th className="num">Rows</th>
          <th>Error</th>
        </tr>
      </thead>
      <tbody>
        {runs.map((r) => (
          <tr key={r.id} className={r.status === "failed" ? "failed" : undefined}>
            <td className="num">{r.id}</td>
            <td>{r.task_name}{r.tier !== null && ` (T${r.tier})`}</td>
            <td title={time(r.started_at)}>{time(r.started_at)}</td>
            <td><StatusBadge status={r.status} /></td>
            <td className="num">{duration(r.duration_ms)}</td>
            <td className="num">{int(r.markets_processed)}</td>
            <td className="num">{int(r.rows_inserted)}</td>
            <td className="error-text">{r.error_message ?? ""}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function TasksPage() {
  const [params, setParams] = useSearchParams();
  const task = params.get("task") ?? "";
  const status = params.get("status") ?? "";
  const limit = Number(params.get("limit") ?? "25");
  const statuses = useTaskStatus();
  const runs = useTaskRuns(task, status, limit);
  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };
  const taskOptions = [
    { value: "", label: "All tasks" },
    ...(statuses.data ?? []).map((t) => ({ value: t.task_name, label: t.task_name })),
  ];
  return (
    <div className="page">
      <h1>Tasks</h1>
      <Panel title="Tasks" testId="panel-task-status" wide>
        {statuses.error && <ErrorNote error={statuses.error} />}
        {statuses.data?.length === 0 && <Empty>No task has run yet.</Empty>}
        {statuses.data && statuses.data.length > 0 && (
          <table className="table compact" data-testid="task-status-table">
            <thead>
              <tr>
                <th>Task</th>
                <th className="num">Every</th>
                <th>Last run</th>
                <th>Status</th>
                <th>Last success</th>
                <th className="num">Runs 24 h</th>
                <th className="num">Failures 24 h</th>
                <th>Last error</th>
              </tr>
            </thead>
            <tbody>
              {statuses.data.map((t) => (
                <tr key={t.task_name}>
                  <td><Link to={`/tasks?task=${encodeURIComponent(t.task_name)}`}>{t.task_name}</Link></td>
                  <td className="num">{t.interval_s ? `${int(t.interval_s)} s` : "—"}</td>
                  <td>{ago(t.last_started_at)}</td>
                  <td><StatusBadge status={t.last_status} /></td>
                  <td>{ago(t.last_success_at)}</td>
                  <td className="num">{int(t.runs_24h)}</td>
                  <td className="num">{int(t.failures_24h)}</td>
                  <td className="error-text">{t.last_error ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Panel>
      <Panel
        title="Run history"
        testId="panel-runs"
        wide
        actions={
          <>
            <Select label="Task" value={task} options={taskOptions} testId="filter-task" onChange={(v) => set("task", v)} />
            <Select label="Status" value={status} options={STATUSES} testId="filter-run-status" onChange={(v) => set("status", v)} />
          </>
        }
      >
        {runs.error && <ErrorNote error={runs.error} />}
        {!runs.data && !runs.error && <Loading />}
        {runs.data?.items.length === 0 && <Empty>No runs match.</Empty>}
        {runs.data && runs.data.items.length > 0 && (
          <>
            <DurationChart runs={runs.data.items} />
            <RunTable runs={runs.data.items} />
            {runs.data.next_before_id !== null && (
              <button type="button" className="more" onClick={() => set("limit", String(Math.min(500, limit + 25)))}>
                Show more
              </button>
            )}
          </>
        )}
      </Panel>
    </div>
  );
}
