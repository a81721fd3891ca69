// Where the holes are: expected against stored snapshots per tier and hour, feed gaps, and open
// markets without a recent snapshot. A slot without a row is "unchanged" when the book was
// skipped for equalling the previous one while its collector ran, "missing" otherwise.
import { useState } from "react";
import { Link } from "react-router-dom";
import {
  Bar,
  BarChart,
  CartesianGrid,
  Legend,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";

import type { Coverage, Gaps } from "../api/client";
import { useCoverage, useGaps } from "../api/hooks";
import { Empty, ErrorNote, Loading, Panel, Segmented, TierBadge } from "../components/ui";
import { ago, clock, int, percent, time } from "../lib/format";

const HOURS = ["6", "24", "72", "168"];

function CoverageTable({ coverage }: { coverage: Coverage }) {
  if (coverage.tiers.length === 0) return <Empty>Nothing was expected in this window.</Empty>;
  return (
    <table className="table" data-testid="coverage-table">
      <thead>
        <tr>
          <th>Tier</th>
          <th className="num">Markets</th>
          <th className="num">Expected</th>
          <th className="num">Stored</th>
          <th className="num" title="not stored: equal to the previous row while the collector ran">
            Unchanged
          </th>
          <th className="num">Missing</th>
          <th className="num">Coverage</th>
          <th className="bar-cell" />
        </tr>
      </thead>
      <tbody>
        {coverage.tiers.map((t) => (
          <tr key={String(t.tier)} data-tier={t.tier ?? "closed"}>
            <td>
              <TierBadge tier={t.tier} />
            </td>
            <td className="num">{int(t.markets)}</td>
            <td className="num">{int(t.expected)}</td>
            <td className="num">{int(t.actual)}</td>
            <td className="num">{int(t.unchanged)}</td>
            <td className="num">{int(t.missing)}</td>
            <td className="num">{percent(t.coverage_pct)}</td>
            <td className="bar-cell">
              <div className="meter">
                <div
                  className={(t.coverage_pct ?? 0) >= 99 ? "fill ok" : "fill warn"}
                  style={{ width: `${Math.min(100, t.coverage_pct ?? 0)}%` }}
                />
              </div>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function HourlyChart({ coverage }: { coverage: Coverage }) {
  type HourTotals = {
    hour: string;
    expected: number;
    actual: number;
    unchanged: number;
    missing: number;
  };
  const byHour = new Map<string, HourTotals>();
  for (const cell of coverage.hours) {
    const entry = byHour.get(cell.hour) ?? {
      hour: cell.hour,
      expected: 0,
      actual: 0,
      unchanged: 0,
      missing: 0,
    };
    entry.expected += cell.expected;
    entry.actual += cell.actual;
    entry.unchanged += cell.unchanged;
    entry.missing += cell.missing;
    byHour.set(cell.hour, entry);
  }
  const data = [...byHour.values()];
  if (data.length === 0) return null;
  return (
    <div className="chart" data-testid="coverage-chart">
      <ResponsiveContainer width="100%" height={200}>
        <BarChart data={data} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
          <CartesianGrid stroke="#e5e7eb" vertical={false} />
          <XAxis dataKey="hour" tickFormatter={clock} fontSize={12} />
          <YAxis width={60} fontSize={12} tickFormatter={(v: number) => int(v)} />
          <Tooltip labelFormatter={(label) => time(String(label))} />
          <Legend />
          <Bar dataKey="expected" fill="#cbd5e1" isAnimationActive={false} />
          <Bar dataKey="actual" name="stored" stackId="slots" fill="#2563eb" isAnimationActive={false} />
          <Bar dataKey="unchanged" stackId="slots" fill="#93c5fd" isAnimationActive={false} />
          <Bar dataKey="missing" stackId="slots" fill="#f59e0b" isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}

function GapSummaryTable({ gaps }: { gaps: Gaps }) {
  if (gaps.summary.length === 0) return <Empty>No feed gaps recorded in this window.</Empty>;
  return (
    <table className="table compact" data-testid="gap-summary">
      <thead>
        <tr>
          <th>Stream</th>
          <th>Reason</th>
          <th className="num">Gaps</th>
          <th className="num">Not repaired</th>
          <th className="num">Total length</th>
        </tr>
      </thead>
      <tbody>
        {gaps.summary.map((g) => (
          <tr key={`${g.stream}/${g.reason}`}>
            <td>{g.stream}</td>
            <td>{g.reason}</td>
            <td className="num">{int(g.gaps)}</td>
            <td className={g.open ? "num overdue" : "num"}>{int(g.open)}</td>
            <td className="num">{int(g.seconds)} s</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function GapList({ gaps }: { gaps: Gaps }) {
  if (gaps.gaps.length === 0) return null;
  return (
    <>
      <h3>Newest {gaps.gaps.length}</h3>
      <table className="table compact" data-testid="gaps-table">
        <thead>
          <tr>
            <th>Stream</th>
            <th>Market</th>
            <th>From</th>
            <th className="num">Length</th>
            <th>Reason</th>
            <th>Repaired</th>
          </tr>
        </thead>
        <tbody>
          {gaps.gaps.map((g) => (
            <tr key={g.id}>
              <td>{g.stream}</td>
              <td>
                {g.market_id ? (
                  <Link to={`/markets/${g.market_id}`}>{g.question ?? g.market_id}</Link>
                ) : (
                  "all"
                )}
              </td>
              <td>{time(g.gap_start)}</td>
              <td className="num">{int(g.duration_s)} s</td>
              <td>{g.reason}</td>
              <td>{g.repaired ? "yes" : "no"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function StaleList({ gaps }: { gaps: Gaps }) {
  if (gaps.stale_markets.length === 0) {
    return (
      <Empty>
        Every open market has a price snapshot from the last {int(gaps.stale_after_s)} s.
      </Empty>
    );
  }
  return (
    <table className="table compact" data-testid="stale-table">
      <thead>
        <tr>
          <th>Market</th>
          <th>Tier</th>
          <th>Last snapshot</th>
        </tr>
      </thead>
      <tbody>
        {gaps.stale_markets.map((m) => (
          <tr key={m.market_id}>
            <td>
              <Link to={`/markets/${m.market_id}`}>{m.question ?? m.market_id}</Link>
            </td>
            <td>
              <TierBadge tier={m.tier} />
            </td>
            <td>{m.last_snapshot_at ? ago(m.last_snapshot_at) : "never"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function GapPanels({ hours }: { hours: number }) {
  const gaps = useGaps(hours);
  const data = gaps.data;
  const title = data
    ? `Feed gaps: ${int(data.gaps_total)} (${int(data.gaps_open)} not repaired)`
    : "Feed gaps";
  return (
    <>
      {gaps.error && <ErrorNote error={gaps.error} />}
      <Panel title={title} testId="panel-gaps" wide>
        {data ? (
          <>
            <GapSummaryTable gaps={data} />
            <GapList gaps={data} />
          </>
        ) : (
          <Loading />
        )}
      </Panel>
      <Panel title={`Stale markets: ${data ? int(data.stale_total) : "…"}`} testId="panel-stale" wide>
        {data ? <StaleList gaps={data} /> : <Loading />}
      </Panel>
    </>
  );
}

export function DataQualityPage() {
  const [stream, setStream] = useState("prices");
  const [hours, setHours] = useState("24");
  const coverage = useCoverage(stream, Number(hours));
  return (
    <div className="page">
      <h1>Data quality</h1>
      <Panel
        title="Coverage by tier"
        testId="panel-coverage"
        wide
        actions={
          <>
            <Segmented
              value={stream}
              options={["prices", "orderbooks"]}
              onChange={setStream}
              testId="stream-switch"
            />
            <Segmented value={hours} options={HOURS} onChange={setHours} testId="hours-switch" />
            <span className="muted small">hours</span>
          </>
        }
      >
        {coverage.error && <ErrorNote error={coverage.error} />}
        {coverage.data ? (
          <>
            <CoverageTable coverage={coverage.data} />
            <HourlyChart coverage={coverage.data} />
          </>
        ) : (
          !coverage.error && <Loading />
        )}
      </Panel>
      <GapPanels hours={Number(hours)} />
    </div>
  );
}
