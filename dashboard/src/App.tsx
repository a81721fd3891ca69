// Layout and routes. The header's indicator is the farm's health at a glance.
import { useState, type FormEvent } from "react";
import { NavLink, Route, Routes } from "react-router-dom";

import { ApiError, storeToken } from "./api/client";
import { useHealth } from "./api/hooks";
import { DashboardPage } from "./pages/Dashboard";
import { DataQualityPage } from "./pages/DataQuality";
import { MarketDetailPage } from "./pages/MarketDetail";
import { MarketsPage } from "./pages/Markets";
import { TasksPage } from "./pages/Tasks";

function HealthIndicator() {
  const health = useHealth();
  const status = health.data?.status ?? (health.error ? "down" : "…");
  const stale = health.data?.collectors.filter((c) => c.stale).map((c) => c.collector) ?? [];
  // TimescaleDB's background jobs (compression, retention, refreshes) also make it degraded.
  const jobs =
    health.data?.timescaledb_jobs?.jobs
      .filter((j) => j.state === "failing" || j.state === "overdue")
      .map((j) => `${j.application_name} ${j.state}`) ?? [];
  // The disk budget: days of disk left at the current growth, and what is given up.
  const disk = health.data?.disk;
  const pressure = disk?.pressure && disk.pressure !== "ok" ? disk.pressure : null;
  const problems = [
    ...(stale.length ? [`stale: ${stale.join(", ")}`] : []),
    ...(jobs.length ? [`TimescaleDB jobs: ${jobs.join(", ")}`] : []),
    ...(pressure ? [`disk: ${pressure.replace("_", " ")}`] : []),
  ];
  const title = problems.length ? problems.join("; ") : "every collector is on time";
  return (
    <span className={`live live-${status}`} title={title} data-testid="health-indicator">
      <span className="dot" /> {status === "ok" ? "Live" : status}
      {disk?.days_left != null && (
        <span className={`disk-left${pressure ? " disk-low" : ""}`} data-testid="disk-days-left">
          disk: {disk.days_left < 10 ? disk.days_left.toFixed(1) : Math.round(disk.days_left)} d left
        </span>
      )}
    </span>
  );
}

function TokenPrompt() {
  const [token, setToken] = useState("");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    storeToken(token);
    window.location.reload();
  };
  return (
    <form className="token" onSubmit={submit}>
      <span>This API needs its bearer token (api.token):</span>
      <input type="password" value={token} onChange={(e) => setToken(e.target.value)} />
      <button type="submit">Use token</button>
    </form>
  );
}

export function App() {
  const health = useHealth();
  const unauthorised = health.error instanceof ApiError && health.error.status === 401;
  return (
    <div className="app">
      <header className="top">
        <span className="brand">polyfarm</span>
        <nav>
          <NavLink to="/" end>Dashboard</NavLink>
          <NavLink to="/markets">Markets</NavLink>
          <NavLink to="/data-quality">Data quality</NavLink>
          <NavLink to="/tasks">Tasks</NavLink>
        </nav>
        <HealthIndicator />
      </header>
      {unauthorised && <TokenPrompt />}
      <main>
        <Routes>
          <Route path="/" element={<DashboardPage />} />
          <Route path="/markets" element={<MarketsPage />} />
          <Route path="/markets/:marketId" element={<MarketDetailPage />} />
          <Route path="/data-quality" element={<DataQualityPage />} />
          <Route path="/tasks" element={<TasksPage />} />
          <Route path="*" element={<div className="page"><h1>Not found</h1></div>} />
        </Routes>
      </main>
    </div>
  );
}
