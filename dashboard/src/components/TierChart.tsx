// Open markets per tier as a bar chart.
import {
  Bar,
  BarChart,
  CartesianGrid,
  Cell,
  LabelList,
  ResponsiveContainer,
  XAxis,
  YAxis,
} from "recharts";

import type { Stats } from "../api/client";
import { tierName } from "../lib/format";

const COLOURS = ["#93c5fd", "#60a5fa", "#3b82f6", "#2563eb", "#1d4ed8", "#9ca3af"];

export function TierChart(props: { tiers: Stats["markets_by_tier"] }) {
  const data = props.tiers.map((t) => ({ tier: tierName(t.tier), markets: t.markets }));
  return (
    <div className="chart" data-testid="tier-chart">
      <ResponsiveContainer width="100%" height={220}>
        <BarChart data={data} margin={{ top: 20, right: 16, bottom: 0, left: 0 }}>
          <CartesianGrid stroke="#e5e7eb" vertical={false} />
          <XAxis dataKey="tier" fontSize={12} />
          <YAxis allowDecimals={false} width={40} fontSize={12} />
          <Bar dataKey="markets" isAnimationActive={false} radius={[3, 3, 0, 0]}>
            <LabelList dataKey="markets" position="top" fontSize={12} />
            {data.map((_, index) => (
              <Cell key={index} fill={COLOURS[index % COLOURS.length]} />
            ))}
          </Bar>
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}
