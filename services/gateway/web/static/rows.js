// The rows of one source report: the sales listing with its filters, order and paging.
import { useEffect, useState } from "preact/hooks";
import { api } from "./api.js";
import { ErrorBox, html, money, num, t, when } from "./ui.js";

const ORDER_FIELDS = ["row", "user_id", "name", "product", "purchase_amount", "username", "is_premium", "status",
  "sub_date", "unsub_date", "action_date", "action_period"];
const COLUMNS = ["user_id", "name", "product", "purchase_amount", "username", "is_premium", "status", "sub_date",
  "unsub_date", "action_date", "action_period", "invite_link"];
const EMPTY = { status: "sale", product: "", is_premium: "", start_date: "", end_date: "", links: "",
  order_by: "row", order_dir: "asc", limit: "25" };

// <input type="datetime-local"> gives "2024-01-31T10:00"; the API reads times in UTC.
const utc = (local) => (local ? `${local}:00Z` : "");

export function RowsPage({ channelId, sourceId }) {
  const [draft, setDraft] = useState(EMPTY);
  const [filters, setFilters] = useState(EMPTY);
  const [offset, setOffset] = useState(0);
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);

  useEffect(() => {
    let stop = false;
    (async () => {
      const params = {
        status: filters.status, product: filters.product, is_premium: filters.is_premium,
        start_date: utc(filters.start_date), end_date: utc(filters.end_date),
        is_null_invite_link: filters.links, order_by: filters.order_by, order_dir: filters.order_dir,
        limit: filters.limit, offset,
      };
      const r = await api("GET", `/sales/analytic/${channelId}/${sourceId}/sales`, { params });
      if (stop) return;
      setError(r.ok ? null : r);
      setRows(r.ok ? r.data : []);
    })();
    return () => {
      stop = true;
    };
  }, [channelId, sourceId, filters, offset]);

  const field = (key) => ({ value: draft[key], onInput: (e) => setDraft({ ...draft, [key]: e.currentTarget.value }) });
  const apply = (e) => {
    e.preventDefault();
    setOffset(0);
    setFilters({ ...draft });
  };
  const limit = Number(filters.limit);
  const cell = (row, key) => {
    const v = row[key];
    if (key === "purchase_amount") return money(v, row.currency);
    if (key === "is_premium") return v ? t("yes") : t("no");
    if (key === "status") return v ? t(`row.status.${v}`) : "—";
    if (key.endsWith("_date")) return when(v);
    if (key === "action_period") return v === null || v === undefined ? "—" : t("unit.days", { n: num(v) });
    return v === null || v === undefined || v === "" ? "—" : String(v);
  };

  return html`<div class="page rows">
    <p><button type="button" class="link" onClick=${() => history.back()}>← ${t("rows.back")}</button></p>
    <h1 tabindex="-1">${t("rows.title")}</h1>
    <p class="muted">${t("rows.source", { id: sourceId })}</p>
    <form class="filters card" onSubmit=${apply} aria-label=${t("rows.filters")}>
      <div class="field"><label for="f-status">${t("rows.status")}</label>
        <select id="f-status" ...${field("status")}>
          ${["sale", "lead", "funnel"].map((s) => html`<option value=${s} selected=${draft.status === s}>${t(`row.status.${s}`)}</option>`)}
        </select></div>
      <div class="field"><label for="f-product">${t("rows.product")}</label><input id="f-product" ...${field("product")} /></div>
      <div class="field"><label for="f-premium">${t("rows.premium")}</label>
        <select id="f-premium" ...${field("is_premium")}>
          <option value="">${t("rows.any")}</option><option value="true">${t("yes")}</option><option value="false">${t("no")}</option>
        </select></div>
      <div class="field"><label for="f-links">${t("rows.links")}</label>
        <select id="f-links" ...${field("links")}>
          <option value="">${t("rows.any")}</option><option value="false">${t("rows.with_link")}</option><option value="true">${t("rows.without_link")}</option>
        </select></div>
      <div class="field"><label for="f-start">${t("rows.start")}</label><input id="f-start" type="datetime-local" ...${field("start_date")} /></div>
      <div class="field"><label for="f-end">${t("rows.end")}</label><input id="f-end" type="datetime-local" ...${field("end_date")} /></div>
      <div class="field"><label for="f-order">${t("rows.order_by")}</label>
        <select id="f-order" ...${field("order_by")}>
          ${ORDER_FIELDS.map((f) => html`<option value=${f}>${t(`col.${f}`)}</option>`)}
        </select></div>
      <div class="field"><label for="f-dir">${t("rows.order_dir")}</label>
        <select id="f-dir" ...${field("order_dir")}>
          <option value="asc">${t("rows.asc")}</option><option value="desc">${t("rows.desc")}</option>
        </select></div>
      <div class="field"><label for="f-limit">${t("rows.limit")}</label>
        <select id="f-limit" ...${field("limit")}>${["10", "25", "50", "100"].map((n) => html`<option value=${n}>${n}</option>`)}</select></div>
      <div class="field"><button type="submit" class="primary">${t("rows.apply")}</button></div>
    </form>
    <${ErrorBox} result=${error} />
    ${rows && rows.length === 0 && !error && html`<p role="status">${t("rows.empty")}</p>`}
    ${rows && rows.length > 0 && html`<div class="table-wrap"><table class="data" data-testid="rows">
      <thead><tr>${COLUMNS.map((c) => html`<th scope="col">${t(`col.${c}`)}</th>`)}</tr></thead>
      <tbody>${rows.map((r) => html`<tr>${COLUMNS.map((c) => html`<td>${cell(r, c)}</td>`)}</tr>`)}</tbody>
    </table></div>`}
    <nav class="pager" aria-label=${t("pager.label")}>
      <button type="button" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - limit))}>${t("pager.prev")}</button>
      <span>${t("pager.page", { page: Math.floor(offset / limit) + 1 })}</span>
      <button type="button" disabled=${!rows || rows.length < limit} onClick=${() => setOffset(offset + limit)}>${t("pager.next")}</button>
    </nav>
  </div>`;
}
