// The API client: typed with the types generated from the API's OpenAPI document
// (src/api/schema.ts, `npm run generate`), so a changed response model breaks the build.
import type { components } from "./schema";

type Schemas = components["schemas"];
export type Stats = Schemas["Stats"];
export type DetailedHealth = Schemas["DetailedHealth"];
export type CollectorStatus = Schemas["CollectorStatus"];
export type MarketPage = Schemas["MarketPage"];
export type MarketRow = Schemas["MarketRow"];
export type MarketFacets = Schemas["MarketFacets"];
export type MarketDetail = Schemas["MarketDetail"];
export type Candle = Schemas["CandleOut"];
export type OrderBook = Schemas["OrderBookOut"];
export type Trade = Schemas["TradeOut"];
export type TaskStatus = Schemas["TaskStatus"];
export type TaskRuns = Schemas["TaskRuns"];
export type TaskRun = Schemas["TaskRun"];
export type Coverage = Schemas["Coverage"];
export type Gaps = Schemas["Gaps"];

export type Params = Record<string, string | number | boolean | null | undefined>;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN_KEY = "polyfarm.token";

export function storedToken(): string | null {
  return window.localStorage.getItem(TOKEN_KEY);
}

export function storeToken(token: string): void {
  window.localStorage.setItem(TOKEN_KEY, token);
}

export function apiUrl(path: string, params: Params = {}): string {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") {
      url.searchParams.set(key, String(value));
    }
  }
  return url.pathname + url.search;
}

export async function getJson<T>(path: string, params: Params = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const token = storedToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(apiUrl(path, params), { headers });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = (await response.json()) as { detail?: unknown };
      if (typeof body.detail === "string") detail = body.detail;
    } catch {
      // not JSON: keep the status text
    }
    throw new ApiError(response.status, detail);
  }
  return (await response.json()) as T;
}
