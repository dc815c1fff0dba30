// The reports of a channel (newest first, status badges that follow processing) and the upload.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, download, uploadWorkbook } from "./api.js";
import { Badge, CellErrors, ErrorBox, channelStore, html, isSettled, t, when } from "./ui.js";

const PAGE = 20;
const CHANNEL_RE = /^-?\d{1,19}$/;

export function ChannelForm({ channel, onChange }) {
  const [value, setValue] = useState(channel);
  const [invalid, setInvalid] = useState(false);
  const submit = (e) => {
    e.preventDefault();
    const v = value.trim();
    if (!CHANNEL_RE.test(v)) {
      setInvalid(true);
      return;
    }
    setInvalid(false);
    channelStore.set(v);
    onChange(v);
  };
  return html`<form class="inline-form" onSubmit=${submit} aria-label=${t("channel.form")}>
    <label for="channel-id">${t("channel.label")}</label>
    <input id="channel-id" name="channel_id" inputmode="numeric" autocomplete="off" value=${value}
      placeholder="-1001234567890" aria-invalid=${invalid ? "true" : "false"} aria-describedby="channel-help"
      onInput=${(e) => setValue(e.currentTarget.value)} />
    <button type="submit">${t("channel.show")}</button>
    <span id="channel-help" class=${invalid ? "error" : "muted"}>${invalid ? t("channel.invalid") : t("channel.help")}</span>
  </form>`;
}

export function ReportsPage() {
  const [channel, setChannel] = useState(channelStore.get());
  const [offset, setOffset] = useState(0);
  const [reports, setReports] = useState(null);
  const [details, setDetails] = useState({});
  const [error, setError] = useState(null);
  const [reloads, setReloads] = useState(0);

  useEffect(() => {
    if (!channel) return;
    let stop = false;
    (async () => {
      const r = await api("GET", "/sales/analytic", {
        params: { channel_id: channel, order_by: "created_at", order_dir: "desc", limit: PAGE, offset },
      });
      if (stop) return;
      if (!r.ok) {
        setError(r);
        setReports([]);
        return;
      }
      setError(null);
      setReports(r.data);
    })();
    return () => {
      stop = true;
    };
  }, [channel, offset, reloads]);

  // The listing carries no status: each listed report is read once, and again every second while
  // it is still pending or processing, so its badge follows the work.
  useEffect(() => {
    if (!reports || reports.length === 0) return;
    let stop = false;
    let timer = null;
    const known = {};
    const poll = async () => {
      const open = reports.filter((r) => !known[r.id] || !isSettled(known[r.id].status));
      const answers = await Promise.all(
        open.map((r) => api("POST", "/sales/analytic/report", { json: { report_id: r.id } })),
      );
      if (stop) return;
      open.forEach((r, i) => {
        if (answers[i].ok) known[r.id] = answers[i].data;
      });
      setDetails({ ...known });
      if (reports.some((r) => !known[r.id] || !isSettled(known[r.id].status))) timer = setTimeout(poll, 1000);
    };
    poll();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [reports]);

  return html`<div class="page">
    <h1 tabindex="-1">${t("reports.title")}</h1>
    <${ChannelForm} channel=${channel} onChange=${(c) => { setChannel(c); setOffset(0); setReloads((n) => n + 1); }} />
    ${channel && html`<${UploadPanel} channel=${channel} onUploaded=${() => { setOffset(0); setReloads((n) => n + 1); }} />`}
    ${channel && html`<section aria-labelledby="reports-list-title">
      <h2 id="reports-list-title">${t("reports.list", { channel })}</h2>
      <${ErrorBox} result=${error} />
      ${reports && reports.length === 0 && !error && html`<p>${t("reports.empty")}</p>`}
      ${reports && reports.length > 0 && html`<div class="table-wrap"><table class="data" data-testid="reports">
        <thead><tr>
          <th scope="col">${t("reports.name")}</th>
          <th scope="col">${t("reports.created")}</th>
          <th scope="col">${t("reports.status")}</th>
          <th scope="col" class="num">${t("metric.sales")}</th>
          <th scope="col" class="num">${t("metric.romi")}</th>
        </tr></thead>
        <tbody>${reports.map((r) => {
          const d = details[r.id];
          return html`<tr data-report-id=${r.id}>
            <td><a href=${`#/report/${r.id}`}>${r.name}</a></td>
            <td>${when(r.created_at)}</td>
            <td>${d ? html`<${Badge} status=${d.status} />` : html`<span class="muted">…</span>`}</td>
            <td class="num">${d && d.sales !== null && d.sales !== undefined ? d.sales : "—"}</td>
            <td class="num">${d && d.romi !== null && d.romi !== undefined ? `${d.romi} %` : "—"}</td>
          </tr>`;
        })}</tbody>
      </table></div>`}
      <nav class="pager" aria-label=${t("pager.label")}>
        <button type="button" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE))}>${t("pager.prev")}</button>
        <span>${t("pager.page", { page: Math.floor(offset / PAGE) + 1 })}</span>
        <button type="button" disabled=${!reports || reports.length < PAGE} onClick=${() => setOffset(offset + PAGE)}>${t("pager.next")}</button>
      </nav>
    </section>`}
  </div>`;
}

function UploadPanel({ channel, onUploaded }) {
  const [file, setFile] = useState(null);
  const [name, setName] = useState("");
  const [budget, setBudget] = useState("");
  const [currency, setCurrency] = useState("");
  const [progress, setProgress] = useState(null);
  const [phase, setPhase] = useState("idle"); // idle | sending | validating | done
  const [rejected, setRejected] = useState(null);
  const [failure, setFailure] = useState(null);
  const [over, setOver] = useState(false);
  const [created, setCreated] = useState(null);
  const input = useRef(null);

  const pick = (f) => {
    if (!f) return;
    setFile(f);
    if (!name) setName(f.name.replace(/\.[^.]+$/, ""));
    setRejected(null);
    setFailure(null);
  };
  const drop = (e) => {
    e.preventDefault();
    setOver(false);
    if (e.dataTransfer && e.dataTransfer.files.length) pick(e.dataTransfer.files[0]);
  };
  const submit = async (e) => {
    e.preventDefault();
    if (!file) {
      setFailure({ text: t("upload.no_file") });
      return;
    }
    setRejected(null);
    setFailure(null);
    setCreated(null);
    setPhase("sending");
    setProgress(0);
    const params = { channel_id: channel, name: name.trim(), budget: budget.trim().replace(",", ".") };
    if (currency.trim()) params.currency = currency.trim().toUpperCase();
    const result = await uploadWorkbook(params, file, (p) => {
      setProgress(p);
      if (p >= 1) setPhase("validating");
    });
    setPhase("done");
    if (result.ok) {
      setCreated(result.data.report_id);
      setFile(null);
      setName("");
      if (input.current) input.current.value = "";
      onUploaded(result.data.report_id);
    } else if (result.status === 409 && result.data && Array.isArray(result.data.errors)) {
      setRejected(result.data);
    } else {
      setFailure({ result });
    }
  };

  const busy = phase === "sending" || phase === "validating";
  return html`<section class="card upload" aria-labelledby="upload-title">
    <h2 id="upload-title">${t("upload.title")}</h2>
    <form onSubmit=${submit}>
      <div class=${`dropzone${over ? " over" : ""}`} data-testid="dropzone"
        onDragOver=${(e) => { e.preventDefault(); setOver(true); }}
        onDragLeave=${() => setOver(false)} onDrop=${drop}>
        <p>${t("upload.drop")}</p>
        <label for="upload-file" class="file-button">${t("upload.file")}</label>
        <input id="upload-file" class="sr-only" type="file" ref=${input}
          accept=".xlsx,.xls,.xlsb,.ods,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
          onChange=${(e) => pick(e.currentTarget.files[0])} />
        <p class="chosen" data-testid="chosen-file">${file ? t("upload.chosen", { name: file.name, size: Math.ceil(file.size / 1024) }) : t("upload.none")}</p>
      </div>
      <div class="fields">
        <div class="field">
          <label for="upload-name">${t("upload.name")}</label>
          <input id="upload-name" required maxlength="200" value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="upload-budget">${t("upload.budget")}</label>
          <input id="upload-budget" required inputmode="decimal" pattern="[0-9]+([.,][0-9]{1,2})?" value=${budget}
            onInput=${(e) => setBudget(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="upload-currency">${t("upload.currency")}</label>
          <input id="upload-currency" maxlength="3" placeholder="RUB" value=${currency}
            aria-describedby="upload-currency-help" onInput=${(e) => setCurrency(e.currentTarget.value)} />
          <span id="upload-currency-help" class="muted">${t("upload.currency_help")}</span>
        </div>
      </div>
      <button type="submit" class="primary" disabled=${busy}>${t("upload.send")}</button>
      <button type="button" class="link" onClick=${() => download("/sales/template", {}, "saleswire-template.xlsx")}>${t("upload.template")}</button>
    </form>
    ${progress !== null && html`<div class="progress" aria-live="polite">
      <label for="upload-progress">${phase === "validating" ? t("upload.validating") : phase === "done" ? t("upload.sent") : t("upload.sending")}</label>
      <progress id="upload-progress" max="100" value=${Math.round(progress * 100)} data-testid="upload-progress">${Math.round(progress * 100)} %</progress>
      <span>${Math.round(progress * 100)} %</span>
    </div>`}
    ${created && html`<p class="ok" role="status" data-testid="upload-ok">${t("upload.created")} <a href=${`#/report/${created}`}>${t("upload.open")}</a></p>`}
    ${failure && html`<${ErrorBox} result=${failure.result} text=${failure.text} />`}
    ${rejected && html`<${CellErrors} body=${rejected} />`}
  </section>`;
}

