// Connections to SweetClub, Eduzz Órbita and Yandex OFD: create, check, attach to a report with a
// period, sync with live progress, delete.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "./api.js";
import { Badge, ErrorBox, channelStore, has, html, isSettled, num, t, when } from "./ui.js";
import { ChannelForm } from "./reports.js";

// The credential fields each platform needs (shared/credentials.py REQUIRED_CREDENTIALS).
const CREDENTIALS = {
  sweetclub: [["username", "text"], ["password", "password"]],
  eduzz: [["token", "password"]],
  ofd: [["yandex_key", "password"], ["ofd_key", "password"]],
};
const RUNNING_STATES = new Set(["queued", "running"]);

export function ConnectionsPage() {
  const [channel, setChannel] = useState(channelStore.get());
  const [connections, setConnections] = useState(null);
  const [reports, setReports] = useState([]);
  const [error, setError] = useState(null);
  const [reloads, setReloads] = useState(0);

  useEffect(() => {
    if (!channel) return;
    let stop = false;
    (async () => {
      const [c, r] = await Promise.all([
        api("GET", "/connections", { params: { channel_id: channel } }),
        api("GET", "/sales/analytic", { params: { channel_id: channel, limit: 100 } }),
      ]);
      if (stop) return;
      setError(c.ok ? null : c);
      setConnections(c.ok ? c.data : []);
      setReports(r.ok ? r.data : []);
    })();
    return () => {
      stop = true;
    };
  }, [channel, reloads]);

  const reload = () => setReloads((n) => n + 1);
  return html`<div class="page">
    <h1 tabindex="-1">${t("conn.title")}</h1>
    <${ChannelForm} channel=${channel} onChange=${(c) => { setChannel(c); reload(); }} />
    ${channel && html`<${CreateConnection} channel=${channel} onCreated=${reload} />`}
    ${channel && html`<section aria-labelledby="conn-list-title">
      <h2 id="conn-list-title">${t("conn.list")}</h2>
      <${ErrorBox} result=${error} />
      ${connections && connections.length === 0 && html`<p>${t("conn.empty")}</p>`}
      ${connections && connections.map((c) => html`<${Connection} key=${c.id} connection=${c} reports=${reports} onDeleted=${reload} />`)}
    </section>`}
  </div>`;
}

function CreateConnection({ channel, onCreated }) {
  const [kind, setKind] = useState("sweetclub");
  const [name, setName] = useState("");
  const [baseUrl, setBaseUrl] = useState("");
  const [interval, setInterval_] = useState("0");
  const [credentials, setCredentials] = useState({});
  const [result, setResult] = useState(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    const creds = Object.fromEntries(CREDENTIALS[kind].map(([field]) => [field, credentials[field] || ""]));
    const r = await api("POST", "/connections", {
      json: { kind, channel_id: Number(channel), name: name || null, base_url: baseUrl.trim(),
        credentials: creds, poll_interval_seconds: Number(interval) },
    });
    setBusy(false);
    setResult(r);
    if (r.ok) {
      setCredentials({});
      setName("");
      onCreated(r.data);
    }
  };
  return html`<section class="card" aria-labelledby="conn-new-title">
    <h2 id="conn-new-title">${t("conn.new")}</h2>
    <form onSubmit=${submit} autocomplete="off">
      <div class="fields">
        <div class="field"><label for="conn-kind">${t("conn.kind")}</label>
          <select id="conn-kind" value=${kind} onChange=${(e) => { setKind(e.currentTarget.value); setCredentials({}); }}>
            <option value="sweetclub">SweetClub</option><option value="eduzz">Eduzz Órbita</option><option value="ofd">Yandex OFD</option>
          </select></div>
        <div class="field"><label for="conn-name">${t("conn.name")}</label>
          <input id="conn-name" maxlength="200" value=${name} onInput=${(e) => setName(e.currentTarget.value)} /></div>
        <div class="field wide"><label for="conn-url">${t("conn.base_url")}</label>
          <input id="conn-url" type="url" required placeholder="https://" value=${baseUrl} onInput=${(e) => setBaseUrl(e.currentTarget.value)} /></div>
        ${CREDENTIALS[kind].map(([field, type]) => html`<div class="field">
          <label for=${`cred-${field}`}>${t(`cred.${field}`)}</label>
          <input id=${`cred-${field}`} type=${type} required autocomplete="new-password" value=${credentials[field] || ""}
            onInput=${(e) => setCredentials({ ...credentials, [field]: e.currentTarget.value })} /></div>`)}
        <div class="field"><label for="conn-interval">${t("conn.interval")}</label>
          <select id="conn-interval" value=${interval} onChange=${(e) => setInterval_(e.currentTarget.value)}>
            <option value="0">${t("conn.interval_off")}</option><option value="900">${t("conn.interval_15")}</option>
            <option value="3600">${t("conn.interval_60")}</option><option value="86400">${t("conn.interval_day")}</option>
          </select></div>
      </div>
      <button type="submit" class="primary" disabled=${busy}>${t("conn.create")}</button>
    </form>
    ${result && result.ok && html`<p class="ok" role="status">${t("conn.created")}</p>`}
    ${result && !result.ok && html`<${ErrorBox} result=${result} />`}
  </section>`;
}

function Connection({ connection, reports, onDeleted }) {
  const [c, setConnection] = useState(connection);
  const [check, setCheck] = useState(null);
  const [checking, setChecking] = useState(false);
  const [sources, setSources] = useState([]);
  const [syncing, setSyncing] = useState(0); // the time of the last sync click, 0 when idle
  const [failure, setFailure] = useState(null);
  const [confirming, setConfirming] = useState(false);
  const [attach, setAttach] = useState({ report_id: "", period_start: "", period_end: "" });
  const sawRun = useRef(false);
  const before = useRef(""); // the sources' progress when the sync was asked for

  const loadSources = async () => {
    const r = await api("GET", `/connections/${c.id}/sources`);
    if (r.ok) setSources(r.data);
    return r.ok ? r.data : [];
  };
  useEffect(() => {
    loadSources();
  }, [c.id]);

  // Live progress: every second while a sync was asked for and has not finished.
  useEffect(() => {
    if (!syncing) return;
    let stop = false;
    let timer = null;
    const poll = async () => {
      const [list, fresh] = await Promise.all([loadSources(), api("GET", `/connections/${c.id}`)]);
      if (stop) return;
      if (fresh.ok) setConnection(fresh.data); // its last_synced_at moves when a run ends
      const running = list.some((s) => RUNNING_STATES.has((s.progress || {}).state) || !isSettled(s.status));
      // A fast sync may start and finish between two reads: a changed progress counts as seen too.
      if (running || JSON.stringify(list.map((s) => s.progress)) !== before.current) sawRun.current = true;
      // Stop once a run was seen and none is left, or when a run never started within 20 s.
      if ((sawRun.current && !running) || (!sawRun.current && Date.now() - syncing > 20000)) {
        // The connection's last_synced_at is written just after the source's status: read it once more.
        timer = setTimeout(async () => {
          const again = await api("GET", `/connections/${c.id}`);
          if (!stop && again.ok) setConnection(again.data);
          setSyncing(0);
        }, 1000);
        return;
      }
      timer = setTimeout(poll, 1000);
    };
    poll();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [syncing]);

  const doCheck = async () => {
    setChecking(true);
    setCheck(null);
    const r = await api("POST", `/connections/${c.id}/check`);
    setChecking(false);
    setCheck(r);
  };
  const doSync = async (sourceId) => {
    setFailure(null);
    const r = await api("POST", `/connections/${c.id}/sync`, { json: sourceId ? { source_report_id: sourceId } : {} });
    if (!r.ok) {
      setFailure(r);
      return;
    }
    sawRun.current = false;
    before.current = JSON.stringify(sources.map((s) => s.progress));
    setSyncing(Date.now());
  };
  const doAttach = async (e) => {
    e.preventDefault();
    setFailure(null);
    const r = await api("POST", `/connections/${c.id}/sources`, { json: attach });
    if (!r.ok) {
      setFailure(r);
      return;
    }
    await loadSources();
  };
  const doDelete = async () => {
    const r = await api("DELETE", `/connections/${c.id}`);
    if (!r.ok && r.status !== 404) {
      setFailure(r);
      return;
    }
    onDeleted(c.id);
  };
  const title = `${c.name || c.kind} (${c.kind})`;
  const checkText = () => {
    if (!check) return null;
    if (!check.ok) return html`<${ErrorBox} result=${check} />`;
    const d = check.data;
    if (d.state === "done" && d.result && d.result.ok) return html`<p class="ok" role="status" data-testid="check-ok">${t("conn.check_ok")}</p>`;
    if (d.state === "queued" || d.state === "running") return html`<p role="status">${t("conn.check_pending")}</p>`;
    const why = d.error || (d.result && (d.result.error || d.result.message)) || d.state;
    return html`<p class="error" role="alert">${t("conn.check_failed", { why })}</p>`;
  };
  const field = (key) => ({ value: attach[key], onInput: (e) => setAttach({ ...attach, [key]: e.currentTarget.value }) });
  const pid = c.id.slice(0, 8);

  return html`<article class="card connection" data-connection-id=${c.id} aria-labelledby=${`conn-${pid}`}>
    <h3 id=${`conn-${pid}`}>${title}</h3>
    <p class="muted">${c.base_url} · ${t("conn.last_synced")}: ${when(c.last_synced_at)}</p>
    <div class="actions">
      <button type="button" onClick=${doCheck} disabled=${checking}>${checking ? t("conn.checking") : t("conn.check")}<span class="sr-only">: ${title}</span></button>
      <button type="button" onClick=${() => doSync(null)} disabled=${sources.length === 0}>${t("conn.sync_all")}</button>
      ${!confirming && html`<button type="button" class="danger" onClick=${() => setConfirming(true)}>${t("conn.delete")}</button>`}
      ${confirming && html`<span role="group" aria-label=${t("conn.delete_confirm", { name: title })}>
        ${t("conn.delete_confirm", { name: title })}
        <button type="button" class="danger" onClick=${doDelete}>${t("conn.delete_yes")}</button>
        <button type="button" onClick=${() => setConfirming(false)}>${t("conn.delete_no")}</button>
      </span>`}
    </div>
    ${checkText()}
    <${ErrorBox} result=${failure} />
    <form class="inline-form attach" onSubmit=${doAttach} aria-label=${t("conn.attach")}>
      <div class="field"><label for=${`att-report-${pid}`}>${t("conn.report")}</label>
        <select id=${`att-report-${pid}`} required ...${field("report_id")}>
          <option value="">${t("conn.pick_report")}</option>
          ${reports.map((r) => html`<option value=${r.id}>${r.name} · ${when(r.created_at)}</option>`)}
        </select></div>
      <div class="field"><label for=${`att-start-${pid}`}>${t("conn.period_start")}</label>
        <input id=${`att-start-${pid}`} type="date" required ...${field("period_start")} /></div>
      <div class="field"><label for=${`att-end-${pid}`}>${t("conn.period_end")}</label>
        <input id=${`att-end-${pid}`} type="date" required ...${field("period_end")} /></div>
      <div class="field"><button type="submit">${t("conn.attach")}</button></div>
    </form>
    ${sources.length > 0 && html`<div class="table-wrap"><table class="data" data-testid="sync-sources">
      <caption class="sr-only">${t("conn.sources_of", { name: title })}</caption>
      <thead><tr><th scope="col">${t("conn.report")}</th><th scope="col">${t("conn.period")}</th>
        <th scope="col">${t("reports.status")}</th><th scope="col">${t("conn.progress")}</th><th scope="col">${t("conn.actions")}</th></tr></thead>
      <tbody>${sources.map((s) => html`<tr data-source-id=${s.id}>
        <td><a href=${`#/report/${s.report_id}`}>${(reports.find((r) => r.id === s.report_id) || {}).name || s.report_id}</a></td>
        <td>${s.period_start.slice(0, 10)} – ${s.period_end.slice(0, 10)}</td>
        <td><${Badge} status=${s.status} /></td>
        <td><${Progress} source=${s} /></td>
        <td class="nowrap"><button type="button" onClick=${() => doSync(s.id)}>${t("conn.sync")}</button>
          <a href=${`#/rows/${s.channel_id}/${s.id}`}>${t("sources.rows_link")}</a></td>
      </tr>`)}</tbody>
    </table></div>`}
  </article>`;
}

/** A sync's progress: its state and every count the connector reports (pages, sales, …). */
function Progress({ source }) {
  const p = source.progress || {};
  const state = p.state || "idle";
  const counts = Object.entries(p).filter(([, v]) => typeof v === "number");
  return html`<div class="sync-progress" aria-live="polite" data-testid="sync-progress" data-state=${state}>
    ${RUNNING_STATES.has(state) && html`<progress aria-label=${t("conn.progress")}></progress>`}
    <span class=${`badge badge-${state}`}>${has(`sync.${state}`) ? t(`sync.${state}`) : state}</span>
    ${counts.map(([k, v]) => html` <span class="count">${has(`sync.count.${k}`) ? t(`sync.count.${k}`) : k}: <strong>${num(v)}</strong></span>`)}
    ${p.error_message && html`<span class="error"> ${p.error_message}</span>`}
  </div>`;
}
