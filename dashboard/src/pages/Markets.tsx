// Every market: searchable, filterable, paginated; the filters live in the URL.
import { useEffect, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";

import type { MarketRow } from "../api/client";
import { useFacets, useMarkets, type MarketQuery } from "../api/hooks";
import { Empty, ErrorNote, Loading, Panel, Select, TierBadge } from "../components/ui";
import { ago, int, price, usd } from "../lib/format";

const PAGE_SIZE = 25;
const TIERS = [
  { value: "", label: "All tiers" },
  ...[0, 1, 2, 3, 4].map((t) => ({ value: String(t), label: `T${t}` })),
];
const STATUSES = [
  { value: "active", label: "Open" },
  { value: "closed", label: "Closed" },
  { value: "all", label: "All" },
];
const SORTS = [
  { value: "volume", label: "24 h volume" },
  { value: "end_date", label: "Closing soonest" },
  { value: "question", label: "Question A–Z" },
  { value: "updated", label: "Recently updated" },
];

function useDebounced(value: string, ms: number): string {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = window.setTimeout(() => setSettled(value), ms);
    return () => window.clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

function MarketTable({ rows }: { rows: MarketRow[] }) {
  return (
    <table className="table" data-testid="markets-table">
      <thead>
        <tr>
          <th>Question</th>
          <th className="num">Price</th>
          <th>Tier</th>
          <th className="num">Snapshots 24 h</th>
          <th className="num">24 h volume</th>
          <th>Updated</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((m) => (
          <tr key={m.market_id} data-market-id={m.market_id}>
            <td className="question">
              <Link to={`/markets/${encodeURIComponent(m.market_id)}`}>{m.question ?? m.slug}</Link>
              {m.category && <span className="muted small"> · {m.category}</span>}
            </td>
            <td className="num" title={m.outcome ?? undefined}>
              {price(m.price)}
            </td>
            <td>
              <TierBadge tier={m.closed ? null : m.tier} />
            </td>
            <td className="num">{int(m.snapshots_24h)}</td>
            <td className="num">{usd(m.volume_24h)}</td>
            <td>{ago(m.price_at)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Pager(props: { page: number; pages: number; onPage: (page: number) => void }) {
  return (
    <div className="pager" data-testid="pager">
      <button type="button" disabled={props.page <= 1} onClick={() => props.onPage(props.page - 1)}>
        ‹ Previous
      </button>
      <span data-testid="page-of">
        Page {props.page} of {Math.max(1, props.pages)}
      </span>
      <button
        type="button"
        disabled={props.page >= props.pages}
        onClick={() => props.onPage(props.page + 1)}
      >
        Next ›
      </button>
    </div>
  );
}

export function MarketsPage() {
  const [params, setParams] = useSearchParams();
  const [text, setText] = useState(params.get("q") ?? "");
  const search = useDebounced(text, 300);
  const update = (changes: Record<string, string>) => {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(changes)) {
      if (value) next.set(key, value);
      else next.delete(key);
    }
    if (!("page" in changes)) next.delete("page");
    setParams(next, { replace: true });
  };
  useEffect(() => {
    if (search !== (params.get("q") ?? "")) update({ q: search });
    // Only when the typed text settles; the URL is the source of truth otherwise.
  }, [search]);
  const query: MarketQuery = {
    tier: params.get("tier") ?? "",
    category: params.get("category") ?? "",
    q: params.get("q") ?? "",
    status: params.get("status") ?? "active",
    sort: params.get("sort") ?? "volume",
    page: Number(params.get("page") ?? "1"),
    page_size: PAGE_SIZE,
  };
  const markets = useMarkets(query);
  const facets = useFacets();
  const categories = [
    { value: "", label: "All categories" },
    ...(facets.data?.categories ?? []).map((c) => ({
      value: c.value,
      label: `${c.label} (${c.markets})`,
    })),
  ];
  const page = markets.data;
  const pages = page ? Math.ceil(page.total / page.page_size) : 1;
  return (
    <div className="page">
      <h1>Markets</h1>
      <div className="filters">
        <Select label="Tier" value={query.tier ?? ""} options={TIERS} testId="filter-tier"
          onChange={(tier) => update({ tier })} />
        <Select label="Category" value={query.category ?? ""} options={categories}
          testId="filter-category" onChange={(category) => update({ category })} />
        <Select label="Status" value={query.status ?? "active"} options={STATUSES}
          testId="filter-status" onChange={(status) => update({ status })} />
        <Select label="Sort" value={query.sort ?? "volume"} options={SORTS} testId="sort"
          onChange={(sort) => update({ sort })} />
        <label className="field grow">
          <span>Search</span>
          <input
            type="search"
            placeholder="Question text…"
            value={text}
            onChange={(event) => setText(event.target.value)}
            data-testid="search"
          />
        </label>
      </div>
      <Panel
        title={page ? `${int(page.total)} markets` : "Markets"}
        testId="panel-markets"
        wide
        actions={markets.isFetching ? <span className="muted small">refreshing…</span> : null}
      >
        {markets.error && <ErrorNote error={markets.error} />}
        {!page && !markets.error && <Loading />}
        {page && page.items.length === 0 && <Empty>No market matches these filters.</Empty>}
        {page && page.items.length > 0 && <MarketTable rows={page.items} />}
        {page && <Pager page={page.page} pages={pages} onPage={(p) => update({ page: String(p) })} />}
      </Panel>
    </div>
  );
}
