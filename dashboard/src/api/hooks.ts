// TanStack Query hooks, one per endpoint. Every page refreshes itself on an interval.
import { keepPreviousData, useQuery } from "@tanstack/react-query";

import {
  getJson,
  type Coverage,
  type DetailedHealth,
  type Gaps,
  type MarketDetail,
  type MarketFacets,
  type MarketPage,
  type Params,
  type Stats,
  type TaskRuns,
  type TaskStatus,
} from "./client";

const FAST = 10_000;
const SLOW = 30_000;
export const TRADES_SHOWN = 25;

function usePoll<T>(key: unknown[], path: string, params: Params, every: number) {
  return useQuery({
    queryKey: [path, ...key],
    queryFn: () => getJson<T>(path, params),
    refetchInterval: every,
    placeholderData: keepPreviousData,
  });
}

export const useStats = () => usePoll<Stats>([], "/api/stats", {}, FAST);

// /health/detailed answers 503 with a body when the database is down; the hook surfaces that
// as an error, and the dashboard shows it.
export const useHealth = () => usePoll<DetailedHealth>([], "/health/detailed", {}, FAST);

export interface MarketQuery {
  tier?: string;
  category?: string;
  tag?: string;
  q?: string;
  status?: string;
  sort?: string;
  page?: number;
  page_size?: number;
}

export const useMarkets = (query: MarketQuery) =>
  usePoll<MarketPage>([query], "/api/markets", { ...query }, FAST);

export const useFacets = () => usePoll<MarketFacets>([], "/api/market-facets", {}, SLOW);

export const useMarket = (id: string, interval: string, outcome: number) =>
  usePoll<MarketDetail>([id, interval, outcome], `/api/markets/${encodeURIComponent(id)}`,
    { interval, outcome, trades: TRADES_SHOWN }, FAST);

export const useTaskStatus = () => usePoll<TaskStatus[]>([], "/api/tasks/status", {}, FAST);

export const useTaskRuns = (task: string, status: string, limit: number) =>
  usePoll<TaskRuns>([task, status, limit], "/api/tasks/runs", { task, status, limit }, FAST);

export const useCoverage = (stream: string, hours: number) =>
  usePoll<Coverage>([stream, hours], "/api/data-quality/coverage", { stream, hours }, SLOW);

export const useGaps = (hours: number) =>
  usePoll<Gaps>([hours], "/api/data-quality/gaps", { hours, limit: 20 }, SLOW);
