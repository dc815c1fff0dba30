// Shared pieces of the page: the template tag, translations, number formats, small components.
import { h } from "preact";
import htm from "htm";

export const html = htm.bind(h);

// ---------------------------------------------------------------- language
// Russian when the browser prefers it, English otherwise; every text of the page is in messages.json.
const preferred = (navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language])
  .map((l) => String(l || "").toLowerCase());
export const lang = preferred.find((l) => l.startsWith("ru") || l.startsWith("en"))?.startsWith("ru") ? "ru" : "en";
let messages = {};

export async function loadMessages() {
  const response = await fetch("/app/static/messages.json");
  const all = await response.json();
  messages = all[lang];
  document.documentElement.lang = lang;
  document.title = messages["app.title"];
}

/** The text for `key`, with {name} placeholders filled from `vars`. */
export function t(key, vars) {
  const text = messages[key];
  if (text === undefined) {
    console.warn("missing text", key);
    return key;
  }
  return vars ? text.replace(/\{(\w+)\}/g, (_, k) => (vars[k] === undefined ? "" : String(vars[k]))) : text;
}

export function has(key) {
  return messages[key] !== undefined;
}

// ---------------------------------------------------------------- formats
const numberFormat = new Intl.NumberFormat(lang, { maximumFractionDigits: 2 });
const moneyFormat = new Intl.NumberFormat(lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const dateFormat = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" });

export function num(value) {
  return value === null || value === undefined ? "—" : numberFormat.format(Number(value));
}

export function money(value, currency) {
  if (value === null || value === undefined) return "—";
  return currency ? `${moneyFormat.format(Number(value))} ${currency}` : moneyFormat.format(Number(value));
}

export function percent(value) {
  return value === null || value === undefined ? "—" : `${numberFormat.format(Number(value))} %`;
}

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : `${dateFormat.format(d)} UTC`;
}

// ---------------------------------------------------------------- components
const SETTLED = new Set(["success", "failed", "ingested", "done"]);
export const isSettled = (status) => SETTLED.has(status);

export function Badge({ status }) {
  const key = `status.${status}`;
  return html`<span class=${`badge badge-${status}`}>${has(key) ? t(key) : status}</span>`;
}

/** An API error as one sentence: the gateway's `detail`, or the validation messages of a 422. */
export function errorText(result) {
  const detail = result && result.data ? result.data.detail : null;
  if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  if (result && result.status === 0) return t("error.network");
  return detail ? String(detail) : t("error.http", { status: result ? result.status : "?" });
}

export function ErrorBox({ result, text }) {
  if (!result && !text) return null;
  return html`<p class="error" role="alert">${text || errorText(result)}</p>`;
}

/** A rejected file's cells (the 409 body), as a table. The gateway's messages are English: a
 * Russian page shows its own text for each error code it knows. */
export function CellErrors({ body }) {
  // "the file has N errors": N counts every bad cell, the list stops at the configured maximum.
  const counted = /(\d+)/.exec(body.detail || "");
  const total = counted ? Number(counted[1]) : body.errors.length;
  return html`<section class="cell-errors" aria-labelledby="cell-errors-title">
    <h3 id="cell-errors-title">${t("upload.rejected")}</h3>
    <p role="alert">${t("upload.rejected_detail", { count: total })}${total > body.errors.length ? ` ${t("upload.rejected_listed", { count: body.errors.length })}` : ""}</p>
    <div class="table-wrap">
      <table class="data" data-testid="cell-errors">
        <thead><tr>
          <th scope="col">${t("cell.sheet")}</th>
          <th scope="col">${t("cell.cell")}</th>
          <th scope="col">${t("cell.column")}</th>
          <th scope="col">${t("cell.value")}</th>
          <th scope="col">${t("cell.message")}</th>
        </tr></thead>
        <tbody>
          ${body.errors.map(
            (e) => html`<tr>
              <td>${e.sheet || "—"}</td>
              <td><code>${e.cell || (e.row ? String(e.row) : "—")}</code></td>
              <td>${e.column || "—"}</td>
              <td>${e.value === null || e.value === undefined ? "—" : e.value}</td>
              <td>${lang === "ru" && has(`code.${e.code}`) ? t(`code.${e.code}`) : e.message}<span class="muted"> (${e.code})</span></td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
  </section>`;
}

export const channelStore = {
  get: () => sessionStorage.getItem("saleswire.channel") || "",
  set: (value) => sessionStorage.setItem("saleswire.channel", value),
};

export function go(hash) {
  window.location.hash = hash;
}
