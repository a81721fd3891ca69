// OHLC candles with Recharts: each candle is a ranged bar [low, high] drawn by a custom shape
// (wick from high to low, body from open to close), green when it closed up, red otherwise.
import {
  Bar,
  CartesianGrid,
  ComposedChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";

import type { Candle } from "../api/client";
import { clock, price, time } from "../lib/format";

interface CandlePoint {
  bucket: string;
  range: [number, number];
  open: number;
  close: number;
  high: number;
  low: number;
  samples: number;
}

interface ShapeProps {
  x: number;
  y: number;
  width: number;
  height: number;
  payload: CandlePoint;
}

function CandleShape({ x, y, width, height, payload }: ShapeProps) {
  const { open, close, high, low } = payload;
  const span = high - low;
  const at = (value: number) => (span === 0 ? y : y + ((high - value) / span) * height);
  const up = close >= open;
  const colour = up ? "#16a34a" : "#dc2626";
  const centre = x + width / 2;
  const bodyTop = at(Math.max(open, close));
  const bodyHeight = Math.max(1, Math.abs(at(open) - at(close)));
  const bodyWidth = Math.max(2, width * 0.7);
  return (
    <g className="candle" data-up={up}>
      <line x1={centre} x2={centre} y1={y} y2={y + height} stroke={colour} strokeWidth={1} />
      <rect
        x={centre - bodyWidth / 2}
        y={bodyTop}
        width={bodyWidth}
        height={bodyHeight}
        fill={up ? colour : colour}
        fillOpacity={up ? 0.35 : 0.85}
        stroke={colour}
      />
    </g>
  );
}

function CandleTooltip(props: { active?: boolean; payload?: { payload: CandlePoint }[] }) {
  const point = props.active ? props.payload?.[0]?.payload : undefined;
  if (!point) return null;
  return (
    <div className="chart-tooltip">
      <div>{time(point.bucket)}</div>
      <div>
        O {price(point.open)} H {price(point.high)} L {price(point.low)} C {price(point.close)}
      </div>
      <div className="muted">{point.samples} snapshots</div>
    </div>
  );
}

export function CandleChart(props: { candles: Candle[] }) {
  const data: CandlePoint[] = props.candles.map((c) => ({
    ...c,
    range: [c.low, c.high],
  }));
  const lows = data.map((d) => d.low);
  const highs = data.map((d) => d.high);
  const pad = Math.max(0.005, (Math.max(...highs) - Math.min(...lows)) * 0.1);
  const domain: [number, number] = [
    Math.max(0, Math.min(...lows) - pad),
    Math.min(1, Math.max(...highs) + pad),
  ];
  return (
    <div className="chart" data-testid="candle-chart">
      <ResponsiveContainer width="100%" height={300}>
        <ComposedChart data={data} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
          <CartesianGrid stroke="#e5e7eb" vertical={false} />
          <XAxis dataKey="bucket" tickFormatter={clock} minTickGap={24} fontSize={12} />
          <YAxis
            domain={domain}
            tickFormatter={(v: number) => price(v)}
            width={60}
            fontSize={12}
            allowDataOverflow
          />
          <Tooltip content={<CandleTooltip />} />
          <Bar
            dataKey="range"
            isAnimationActive={false}
            shape={(shape: unknown) => <CandleShape {...(shape as ShapeProps)} />}
          />
        </ComposedChart>
      </ResponsiveContainer>
    </div>
  );
}
