// Small building blocks shared by the pages.
import type { ReactNode } from "react";

import { ApiError } from "../api/client";
import { tierName } from "../lib/format";

export function Card(props: { label: string; value: string; sub?: ReactNode; testId: string }) {
  return (
    <div className="card" data-testid={props.testId}>
      <div className="card-label">{props.label}</div>
      <div className="card-value" data-testid={`${props.testId}-value`}>
        {props.value}
      </div>
      {props.sub && <div className="card-sub">{props.sub}</div>}
    </div>
  );
}

export function Panel(props: {
  title: string;
  children: ReactNode;
  actions?: ReactNode;
  testId?: string;
  wide?: boolean;
}) {
  return (
    <section className={props.wide ? "panel wide" : "panel"} data-testid={props.testId}>
      <header className="panel-head">
        <h2>{props.title}</h2>
        {props.actions && <div className="panel-actions">{props.actions}</div>}
      </header>
      {props.children}
    </section>
  );
}

export function Empty(props: { children: ReactNode }) {
  return <p className="empty">{props.children}</p>;
}

export function Loading() {
  return <p className="muted">Loading…</p>;
}

export function ErrorNote(props: { error: unknown }) {
  const error = props.error;
  const text =
    error instanceof ApiError
      ? `${error.status}: ${error.message}`
      : error instanceof Error
        ? error.message
        : String(error);
  return (
    <p className="error" role="alert">
      Cannot load: {text}
    </p>
  );
}

export function TierBadge(props: { tier: number | null | undefined }) {
  const tier = props.tier;
  const tone = tier === null || tier === undefined ? "closed" : `t${tier}`;
  return <span className={`badge tier-${tone}`}>{tierName(tier)}</span>;
}

export function StatusBadge(props: { status: string }) {
  const ok = props.status === "success" || props.status === "ok";
  const bad = props.status === "failed" || props.status === "down";
  const tone = ok ? "ok" : bad ? "bad" : "warn";
  return <span className={`badge status-${tone}`}>{ok ? "✓ " : bad ? "✗ " : ""}{props.status}</span>;
}

export function Select(props: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  options: { value: string; label: string }[];
  testId: string;
}) {
  return (
    <label className="field">
      <span>{props.label}</span>
      <select
        value={props.value}
        onChange={(event) => props.onChange(event.target.value)}
        data-testid={props.testId}
      >
        {props.options.map((option) => (
          <option key={option.value} value={option.value}>
            {option.label}
          </option>
        ))}
      </select>
    </label>
  );
}

export function Segmented(props: {
  value: string;
  options: string[];
  onChange: (value: string) => void;
  testId: string;
}) {
  return (
    <div className="segmented" role="group" data-testid={props.testId}>
      {props.options.map((option) => (
        <button
          key={option}
          type="button"
          className={option === props.value ? "active" : ""}
          aria-pressed={option === props.value}
          onClick={() => props.onChange(option)}
        >
          {option}
        </button>
      ))}
    </div>
  );
}
