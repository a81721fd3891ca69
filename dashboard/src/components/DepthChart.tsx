// Order-book depth: cumulative shares on each side of the spread, from the stored top levels.
import {
  Area,
  AreaChart,
  CartesianGrid,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";

import type { OrderBook } from "../api/client";
import { int, price } from "../lib/format";

interface DepthPoint {
  price: number;
  bids?: number;
  asks?: number;
}

/** Cumulative depth, best level outwards, sorted by price (pure, exported for reuse). */
export function depthPoints(book: OrderBook): DepthPoint[] {
  const points: DepthPoint[] = [];
  let total = 0;
  for (const level of book.bids) {
    total += level.size;
    points.push({ price: level.price, bids: total });
  }
  total = 0;
  for (const level of book.asks) {
    total += level.size;
    points.push({ price: level.price, asks: total });
  }
  return points.sort((a, b) => a.price - b.price);
}

export function DepthChart(props: { book: OrderBook }) {
  const data = depthPoints(props.book);
  return (
    <div className="chart" data-testid="depth-chart">
      <ResponsiveContainer width="100%" height={220}>
        <AreaChart data={data} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
          <CartesianGrid stroke="#e5e7eb" vertical={false} />
          <XAxis
            dataKey="price"
            type="number"
            domain={["dataMin", "dataMax"]}
            tickFormatter={(v: number) => price(v)}
            fontSize={12}
          />
          <YAxis tickFormatter={(v: number) => int(v)} width={60} fontSize={12} />
          <Tooltip
            formatter={(value, name) => [int(Number(value)), String(name)]}
            labelFormatter={(label) => `price ${price(Number(label))}`}
          />
          <Area
            type="stepAfter"
            dataKey="bids"
            stroke="#16a34a"
            fill="#16a34a"
            fillOpacity={0.25}
            connectNulls={false}
            isAnimationActive={false}
          />
          <Area
            type="stepBefore"
            dataKey="asks"
            stroke="#dc2626"
            fill="#dc2626"
            fillOpacity={0.25}
            connectNulls={false}
            isAnimationActive={false}
          />
        </AreaChart>
      </ResponsiveContainer>
    </div>
  );
}
