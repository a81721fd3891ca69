// One market: price candles at a chosen interval, the order book, trades, resolution, features.
import { useState } from "react";
import { Link, useParams } from "react-router-dom";

import type { MarketDetail, Trade } from "../api/client";
import { useMarket } from "../api/hooks";
import { CandleChart } from "../components/CandleChart";
import { DepthChart } from "../components/DepthChart";
import { Empty, ErrorNote, Loading, Panel, Segmented, TierBadge } from "../components/ui";
import { ago, compact, decimal, int, price, time, usd } from "../lib/format";

const INTERVALS = ["auto", "1m", "5m", "15m", "1h", "4h", "1d"];
const WHALES = ["", "large", "whale", "mega whale"];

function Header({ market }: { market: MarketDetail }) {
  return (
    <header className="market-head">
      <p className="crumbs">
        <Link to="/markets">Markets</Link> / {market.market_id}
      </p>
      <h1 data-testid="market-question">{market.question ?? market.slug}</h1>
      <p className="meta">
        <TierBadge tier={market.closed ? null : market.tier} />
        {market.category && <span>{market.category}</span>}
        {market.tags.map((tag) => (
          <span key={tag} className="badge tag">
            {tag}
          </span>
        ))}
        <span>closes {time(market.end_date)}</span>
        <span>24 h volume {usd(market.volume_24h)}</span>
        <span>liquidity {usd(market.liquidity)}</span>
      </p>
      <ul className="outcomes" data-testid="outcome-prices">
        {market.tokens.map((t) => (
          <li key={t.token_id}>
            <span>{t.outcome ?? `outcome ${t.outcome_index}`}</span>
            <strong>{price(t.price)}</strong>
            <span className="muted small">{ago(t.price_at)}</span>
          </li>
        ))}
      </ul>
    </header>
  );
}

function ResolutionBox({ market }: { market: MarketDetail }) {
  const r = market.resolution;
  if (!r) {
    return <Empty>{market.closed ? "Closed; resolution not recorded yet." : "Not resolved: the market is open."}</Empty>;
  }
  return (
    <dl className="facts" data-testid="resolution">
      <dt>Outcome</dt>
      <dd>
        <strong>{r.winning_outcome ?? r.outcome_kind}</strong> ({r.outcome_kind})
      </dd>
      <dt>Resolved</dt>
      <dd>{time(r.resolved_at)}</dd>
      <dt>Final prices</dt>
      <dd>
        {r.final_prices
          ? Object.entries(r.final_prices).map(([k, v]) => `${k} ${decimal(v, 2)}`).join(" · ")
          : "—"}
      </dd>
      <dt>Detected by</dt>
      <dd>
        {r.method} ({r.source})
      </dd>
    </dl>
  );
}

function Trades({ trades }: { trades: Trade[] }) {
  if (trades.length === 0) return <Empty>No trades stored for this market yet.</Empty>;
  return (
    <table className="table compact" data-testid="trades-table">
      <thead>
        <tr>
          <th>Time</th>
          <th>Outcome</th>
          <th>Side</th>
          <th className="num">Price</th>
          <th className="num">Shares</th>
          <th className="num">Notional</th>
          <th>Whale</th>
        </tr>
      </thead>
      <tbody>
        {trades.map((t, index) => (
          <tr key={index} className={t.whale_tier ? "whale" : undefined}>
            <td>{time(t.ts)}</td>
            <td>{t.outcome ?? "—"}</td>
            <td className={t.side === "BUY" ? "buy" : "sell"}>{t.side}</td>
            <td className="num">{price(t.price)}</td>
            <td className="num">{decimal(t.size, 2)}</td>
            <td className="num">{usd(t.notional)}</td>
            <td>
              {t.whale_tier ? (
                <span className={`badge whale whale-${t.whale_tier}`}>◆ {WHALES[t.whale_tier]}</span>
              ) : (
                ""
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Features({ market }: { market: MarketDetail }) {
  const entries = Object.entries(market.features);
  if (entries.length === 0) return <Empty>No features computed for this token yet.</Empty>;
  return (
    <>
      <p className="muted small">as of {time(market.features_at)}</p>
      <dl className="features" data-testid="features">
        {entries.map(([name, value]) => (
          <div key={name}>
            <dt>{name}</dt>
            <dd>{typeof value === "number" ? compact(value) : String(value ?? "—")}</dd>
          </div>
        ))}
      </dl>
    </>
  );
}

function Book({ market }: { market: MarketDetail }) {
  const book = market.book;
  if (!book) return <Empty>No order book stored for this token yet.</Empty>;
  return (
    <>
      <DepthChart book={book} />
      <p className="muted small" data-testid="book-facts">
        best bid {price(book.best_bid)} · best ask {price(book.best_ask)} · spread{" "}
        {price(book.spread)} · {int(book.bid_levels)}/{int(book.ask_levels)} levels ·{" "}
        {time(book.ts)} ({book.source})
      </p>
    </>
  );
}

export function MarketDetailPage() {
  const { marketId = "" } = useParams();
  const [interval, chooseInterval] = useState("auto");
  const [outcome, setOutcome] = useState(0);
  const detail = useMarket(marketId, interval, outcome);
  const market = detail.data;
  if (detail.error) return <div className="page"><ErrorNote error={detail.error} /></div>;
  if (!market) return <div className="page"><Loading /></div>;
  const outcomes = market.tokens.map((t) => t.outcome ?? String(t.outcome_index));
  return (
    <div className="page">
      <Header market={market} />
      <Panel
        title={`Price (${outcomes[outcome] ?? "outcome"}), ${market.interval} candles`}
        testId="panel-price"
        wide
        actions={
          <>
            {outcomes.length > 1 && (
              <Segmented value={outcomes[outcome] ?? ""} options={outcomes} testId="outcome-switch"
                onChange={(o) => setOutcome(Math.max(0, outcomes.indexOf(o)))} />
            )}
            <Segmented value={interval} options={INTERVALS} onChange={chooseInterval} testId="interval-switch" />
          </>
        }
      >
        {market.candles.length > 0 ? (
          <CandleChart candles={market.candles} />
        ) : (
          <Empty>No price snapshots stored for this token yet.</Empty>
        )}
      </Panel>
      <div className="grid two">
        <Panel title="Order book depth" testId="panel-book">
          <Book market={market} />
        </Panel>
        <Panel title="Resolution" testId="panel-resolution">
          <ResolutionBox market={market} />
        </Panel>
      </div>
      <Panel title="Recent trades" testId="panel-trades" wide>
        <Trades trades={market.trades} />
      </Panel>
      <Panel title="Latest features" testId="panel-features" wide>
        <Features market={market} />
      </Panel>
    </div>
  );
}
