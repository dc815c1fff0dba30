// One report: metric cards with their definitions, the funnel chart, the per-link table with
// editable costs, currency warnings, the sources and the export.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, download } from "./api.js";
import { Badge, ErrorBox, html, isSettled, money, num, percent, t, when } from "./ui.js";

// [field, kind]: kind picks the format (count, money in the report's currency, percent, days).
const METRICS = [
  ["subs", "count"], ["net_subs", "count"], ["unsubs", "count"], ["unsub_percent", "percent"],
  ["funnel", "count"], ["leads", "count"], ["sales", "count"], ["profit", "money"], ["romi", "percent"],
  ["cpc", "money"], ["cpc_net", "money"], ["cpf", "money"], ["cpl", "money"], ["cac", "money"],
  ["cr_funnel", "percent"], ["cr_leads", "percent"], ["cr_sales", "percent"],
  ["avg_funnel", "days"], ["avg_lead", "days"], ["avg_sale", "days"],
  ["retention_d1", "percent"], ["retention_d7", "percent"], ["retention_d30", "percent"],
  ["premium_percent", "percent"], ["username_percent", "percent"],
];

function format(kind, value, currency) {
  if (kind === "money") return money(value, currency);
  if (kind === "percent") return percent(value);
  if (kind === "days") return value === null || value === undefined ? "—" : t("unit.days", { n: num(value) });
  return num(value);
}

export function ReportPage({ reportId }) {
  const [report, setReport] = useState(null);
  const [error, setError] = useState(null);
  const [exportError, setExportError] = useState(null);

  useEffect(() => {
    let stop = false;
    let timer = null;
    const load = async () => {
      const r = await api("POST", "/sales/analytic/report", { json: { report_id: reportId } });
      if (stop) return;
      if (!r.ok) {
        setError(r);
        return;
      }
      setError(null);
      setReport(r.data);
      if (!isSettled(r.data.status)) timer = setTimeout(load, 1000);
    };
    load();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [reportId]);

  if (error) return html`<div class="page"><h1 tabindex="-1">${t("report.title")}</h1><${ErrorBox} result=${error} /></div>`;
  if (!report) return html`<div class="page"><p role="status">${t("loading")}</p></div>`;
  const currency = report.currency || "";
  const exportAs = async (fmt) => {
    setExportError(null);
    const r = await download(`/sales/analytic/report/${report.id}/export`, { format: fmt }, `${report.name}.${fmt}`);
    if (!r.ok) setExportError(r);
  };
  const shown = METRICS.filter(([field]) => field in report);

  return html`<div class="page report">
    <p><a href="#/reports">← ${t("report.back")}</a></p>
    <h1 tabindex="-1">${report.name}</h1>
    <p class="report-meta">
      <${Badge} status=${report.status} />
      <span>${t("report.budget")}: <strong data-testid="budget">${money(report.budget, currency)}</strong></span>
      <span>${t("report.created")}: ${when(report.created_at)}</span>
      <span>${t("report.channel")}: ${report.channel_id}</span>
    </p>
    ${report.error_message && html`<p class="error" role="alert">${report.error_message}</p>`}
    <div class="actions">
      <button type="button" class="primary" onClick=${() => exportAs("xlsx")}>${t("report.export_xlsx")}</button>
      <button type="button" onClick=${() => exportAs("csv")}>${t("report.export_csv")}</button>
    </div>
    <${ErrorBox} result=${exportError} />
    <${Currencies} key=${report.updated_at} report=${report} onReport=${setReport} />
    <section aria-labelledby="metrics-title">
      <h2 id="metrics-title">${t("report.metrics")}</h2>
      <ul class="cards" data-testid="metrics">
        ${shown.map(([field, kind]) => html`<li class="metric" tabindex="0" data-metric=${field}
            aria-describedby=${`def-${field}`}>
          <span class="metric-name">${t(`metric.${field}`)}</span>
          <span class="metric-value">${format(kind, report[field], currency)}</span>
          <span class="tooltip" role="tooltip" id=${`def-${field}`}>${t(`def.${field}`)}</span>
        </li>`)}
      </ul>
    </section>
    <${Funnel} report=${report} />
    <${Links} report=${report} />
    <${Sources} report=${report} />
  </div>`;
}

function Currencies({ report, onReport }) {
  const warnings = report.warnings || [];
  const byCurrency = Object.entries(report.profit_by_currency || {});
  const rates = Object.entries(report.exchange_rates || {});
  const foreign = [...new Set([...byCurrency.map(([c]) => c), ...rates.map(([c]) => c)])].filter((c) => c !== report.currency);
  const [draft, setDraft] = useState(Object.fromEntries(rates.map(([c, v]) => [c, String(v)])));
  const [result, setResult] = useState(null);
  const [busy, setBusy] = useState(false);
  if (!warnings.length && byCurrency.length <= 1 && !rates.length) return null;
  const save = async (e) => {
    e.preventDefault();
    setBusy(true);
    const body = {};
    for (const [code, v] of Object.entries(draft)) if (String(v).trim() !== "") body[code] = String(v).trim().replace(",", ".");
    const r = await api("PUT", `/sales/analytic/report/${report.id}/exchange-rates`, { json: body });
    setBusy(false);
    setResult(r);
    if (r.ok && r.status === 200) onReport(r.data);
  };
  return html`<section aria-labelledby="currency-title" class="card">
    <h2 id="currency-title">${t("report.currencies")}</h2>
    ${warnings.length > 0 && html`<ul class="warnings" data-testid="warnings">
      ${warnings.map((w) => html`<li class="warning">⚠ ${w}</li>`)}
    </ul>`}
    ${byCurrency.length > 0 && html`<table class="data compact" data-testid="profit-by-currency">
      <caption>${t("report.profit_by_currency")}</caption>
      <thead><tr><th scope="col">${t("report.currency")}</th><th scope="col" class="num">${t("metric.profit")}</th>
        <th scope="col" class="num">${t("report.rate", { currency: report.currency || "" })}</th></tr></thead>
      <tbody>${byCurrency.map(([code, sum]) => html`<tr><th scope="row">${code}</th><td class="num">${money(sum, code)}</td>
        <td class="num">${code === report.currency ? "1" : report.exchange_rates && report.exchange_rates[code] !== undefined ? num(report.exchange_rates[code]) : t("report.no_rate")}</td></tr>`)}</tbody>
    </table>`}
    ${foreign.length > 0 && html`<form class="inline-form" onSubmit=${save} aria-label=${t("rates.title")}>
      ${foreign.map((code) => html`<div class="field"><label for=${`rate-${code}`}>${t("rates.label", { code, currency: report.currency })}</label>
        <input id=${`rate-${code}`} inputmode="decimal" size="8" value=${draft[code] ?? ""}
          onInput=${(e) => setDraft({ ...draft, [code]: e.currentTarget.value })} /></div>`)}
      <div class="field"><button type="submit" disabled=${busy}>${t("rates.save")}</button></div>
      ${result && result.status === 202 && html`<span role="status">${t("rates.pending")}</span>`}
      ${result && !result.ok && html`<${ErrorBox} result=${result} />`}
    </form>`}
  </section>`;
}

function Funnel({ report }) {
  const canvas = useRef(null);
  const chart = useRef(null);
  const steps = [
    [t("metric.subs"), report.subs],
    [t("metric.funnel"), report.funnel],
    [t("metric.leads"), report.leads],
    [t("metric.sales"), report.sales],
  ];
  const values = steps.map(([, v]) => v || 0);
  useEffect(() => {
    if (!canvas.current || !window.Chart) return;
    if (chart.current) {
      chart.current.data.datasets[0].data = values;
      chart.current.update("none");
      return;
    }
    chart.current = new window.Chart(canvas.current, {
      type: "bar",
      data: {
        labels: steps.map(([label]) => label),
        datasets: [{ label: t("report.funnel"), data: values, backgroundColor: ["#1d4f91", "#2f6fb5", "#4a8bd0", "#0b6e4f"] }],
      },
      options: {
        indexAxis: "y",
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true, ticks: { precision: 0, color: "#1f2328" } }, y: { ticks: { color: "#1f2328" } } },
      },
    });
    return undefined;
  }, [values.join(",")]);
  useEffect(() => () => chart.current && chart.current.destroy(), []);
  const summary = steps.map(([label, v]) => `${label}: ${num(v)}`).join(", ");
  return html`<section aria-labelledby="funnel-title">
    <h2 id="funnel-title">${t("report.funnel")}</h2>
    <div class="chart-box"><canvas ref=${canvas} role="img" aria-label=${`${t("report.funnel")}: ${summary}`} data-testid="funnel-chart"></canvas></div>
  </section>`;
}

const LINK_COLUMNS = [
  ["invite_link", "text"], ["subs", "count"], ["net_subs", "count"], ["retention_d1", "percent"],
  ["retention_d7", "percent"], ["retention_d30", "percent"], ["sales", "count"], ["profit", "money"],
  ["cost", "cost"], ["romi", "percent"],
];

function Links({ report }) {
  const [links, setLinks] = useState(null);
  const [error, setError] = useState(null);
  const [sort, setSort] = useState({ key: "subs", dir: "desc" });
  const [costs, setCosts] = useState({});
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState(false);
  const [saveError, setSaveError] = useState(null);
  const settled = isSettled(report.status);

  useEffect(() => {
    if (!settled) return;
    let stop = false;
    (async () => {
      const r = await api("GET", `/sales/analytic/report/${report.id}/links`);
      if (stop) return;
      if (!r.ok) {
        setError(r);
        return;
      }
      setError(null);
      setLinks(r.data);
      setCosts(Object.fromEntries(r.data.filter((l) => l.invite_link !== null).map((l) => [l.invite_link, l.cost === null ? "" : String(l.cost)])));
    })();
    return () => {
      stop = true;
    };
  }, [report.id, settled, report.updated_at]);

  const rows = useMemo(() => {
    if (!links) return [];
    const sign = sort.dir === "asc" ? 1 : -1;
    return [...links].sort((a, b) => {
      const x = a[sort.key];
      const y = b[sort.key];
      if (x === y) return 0;
      if (x === null || x === undefined) return 1; // empty values last either way
      if (y === null || y === undefined) return -1;
      return (typeof x === "string" ? x.localeCompare(y) : x - y) * sign;
    });
  }, [links, sort]);

  const save = async (e) => {
    e.preventDefault();
    setSaving(true);
    setSaved(false);
    setSaveError(null);
    const body = {};
    for (const [link, value] of Object.entries(costs)) {
      const v = String(value).trim().replace(",", ".");
      if (v !== "") body[link] = Number(v);
    }
    const r = await api("PUT", `/sales/analytic/report/${report.id}/links/costs`, { json: body });
    if (!r.ok) {
      setSaving(false);
      setSaveError(r);
      return;
    }
    // 202: saved, analytics still recomputing; read the links until they carry the new costs.
    let answer = r.status === 202 ? null : r.data;
    for (let i = 0; !answer && i < 60; i += 1) {
      await new Promise((done) => setTimeout(done, 1000));
      const again = await api("GET", `/sales/analytic/report/${report.id}/links`);
      if (again.ok && again.data.every((l) => l.invite_link === null || (l.cost ?? null) === (body[l.invite_link] ?? null))) answer = again.data;
    }
    setSaving(false);
    if (!answer) {
      setSaveError({ text: t("links.still_recomputing") });
      return;
    }
    setLinks(answer);
    setSaved(true);
  };
  const toggle = (key) => setSort((s) => ({ key, dir: s.key === key && s.dir === "desc" ? "asc" : "desc" }));

  return html`<section aria-labelledby="links-title">
    <h2 id="links-title">${t("links.title")}</h2>
    ${!settled && html`<p class="muted">${t("links.wait")}</p>`}
    ${error && html`<${ErrorBox} result=${error} />`}
    ${links && links.length === 0 && html`<p>${t("links.empty")}</p>`}
    ${links && links.length > 0 && html`<form onSubmit=${save}>
      <div class="table-wrap"><table class="data" data-testid="links">
        <caption class="sr-only">${t("links.caption")}</caption>
        <thead><tr>${LINK_COLUMNS.map(([key]) => html`<th scope="col" class=${key === "invite_link" ? "" : "num"}
            aria-sort=${sort.key === key ? (sort.dir === "asc" ? "ascending" : "descending") : "none"}>
          <button type="button" class="sort" onClick=${() => toggle(key)} data-sort=${key}>
            ${t(`link.${key}`)}<span aria-hidden="true">${sort.key === key ? (sort.dir === "asc" ? " ▲" : " ▼") : ""}</span>
          </button></th>`)}</tr></thead>
        <tbody>${rows.map((l, i) => html`<tr data-link=${l.invite_link === null ? "" : l.invite_link}>
          <th scope="row" class="link-cell">${l.invite_link === null ? html`<em>${t("links.no_link")}</em>` : l.invite_link}</th>
          ${LINK_COLUMNS.slice(1).map(([key, kind]) => {
            if (kind !== "cost") return html`<td class="num" data-col=${key}>${format(kind, l[key], report.currency)}</td>`;
            if (l.invite_link === null) return html`<td class="num" data-col="cost">—</td>`;
            const id = `cost-${i}`;
            return html`<td class="num" data-col="cost">
              <label class="sr-only" for=${id}>${t("links.cost_for", { link: l.invite_link })}</label>
              <input id=${id} class="cost" inputmode="decimal" size="8" value=${costs[l.invite_link] ?? ""}
                onInput=${(e) => setCosts({ ...costs, [l.invite_link]: e.currentTarget.value })} />
            </td>`;
          })}
        </tr>`)}</tbody>
      </table></div>
      <div class="actions">
        <button type="submit" class="primary" disabled=${saving}>${t("links.save")}</button>
        ${saving && html`<span role="status">${t("links.saving")}</span>`}
        ${saved && html`<span role="status" class="ok">${t("links.saved")}</span>`}
      </div>
      ${saveError && html`<${ErrorBox} result=${saveError.text ? null : saveError} text=${saveError.text} />`}
    </form>`}
  </section>`;
}

function Sources({ report }) {
  const sources = report.source_reports || [];
  return html`<section aria-labelledby="sources-title">
    <h2 id="sources-title">${t("sources.title")}</h2>
    ${sources.length === 0 && html`<p>${t("sources.empty")}</p>`}
    ${sources.length > 0 && html`<div class="table-wrap"><table class="data" data-testid="sources">
      <thead><tr>
        <th scope="col">${t("sources.name")}</th><th scope="col">${t("sources.kind")}</th>
        <th scope="col">${t("reports.status")}</th><th scope="col" class="num">${t("sources.rows")}</th>
        <th scope="col">${t("sources.created")}</th><th scope="col">${t("sources.open")}</th>
      </tr></thead>
      <tbody>${sources.map((s) => html`<tr>
        <td>${s.name}</td><td>${s.kind}</td><td><${Badge} status=${s.status} /></td>
        <td class="num">${num(s.rows)}</td><td>${when(s.created_at)}</td>
        <td><a href=${`#/rows/${report.channel_id}/${s.id}`}>${t("sources.rows_link")}<span class="sr-only">: ${s.name}</span></a></td>
      </tr>`)}</tbody>
    </table></div>`}
  </section>`;
}
