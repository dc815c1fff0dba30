// The page's shell: sign-in, navigation and the hash routes (#/reports, #/report/ID,
// #/rows/CHANNEL/SOURCE, #/connections). The token never enters a URL.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, onUnauthorized, session } from "./api.js";
import { ConnectionsPage } from "./connections.js";
import { ReportPage } from "./report.js";
import { ReportsPage } from "./reports.js";
import { RowsPage } from "./rows.js";
import { ErrorBox, html, loadMessages, t } from "./ui.js";

function route(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "report" && parts[1]) return { page: "report", reportId: parts[1] };
  if (parts[0] === "rows" && parts[1] && parts[2]) return { page: "rows", channelId: parts[1], sourceId: parts[2] };
  if (parts[0] === "connections") return { page: "connections" };
  return { page: "reports" };
}

function SignIn({ onSignedIn, expired }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    const r = await api("GET", "/app/me", { token: token.trim() });
    setBusy(false);
    if (r.ok) {
      session.signIn(token.trim(), r.data.name);
      onSignedIn(r.data.name);
    } else {
      setError(r.status === 401 ? { text: t("signin.invalid") } : { result: r });
    }
  };
  return html`<main id="main" class="signin">
    <h1 tabindex="-1">Saleswire</h1>
    <p>${t("signin.intro")}</p>
    ${expired && html`<p class="warning" role="status">${t("signin.expired")}</p>`}
    <form class="card" onSubmit=${submit}>
      <label for="token">${t("signin.token")}</label>
      <input id="token" name="token" type="password" required autocomplete="off" spellcheck="false"
        aria-describedby="token-help" value=${token} onInput=${(e) => setToken(e.currentTarget.value)} />
      <p id="token-help" class="muted">${t("signin.help")}</p>
      <button type="submit" class="primary" disabled=${busy}>${t("signin.submit")}</button>
      ${error && html`<${ErrorBox} result=${error.result} text=${error.text} />`}
    </form>
  </main>`;
}

function App() {
  const [user, setUser] = useState(session.token() ? session.user() : null);
  const [expired, setExpired] = useState(false);
  const [where, setWhere] = useState(route(window.location.hash));

  useEffect(() => {
    const onHash = () => setWhere(route(window.location.hash));
    window.addEventListener("hashchange", onHash);
    const off = onUnauthorized(() => {
      session.signOut();
      setExpired(true);
      setUser(null);
    });
    return () => {
      window.removeEventListener("hashchange", onHash);
      off();
    };
  }, []);
  // Each new page puts the focus on its heading, so keyboard and screen-reader users start there.
  useEffect(() => {
    const heading = document.querySelector("main h1");
    if (heading) heading.focus();
  }, [where, user]);

  if (!user) return html`<${SignIn} expired=${expired} onSignedIn=${(name) => { setExpired(false); setUser(name); }} />`;
  const signOut = () => {
    session.signOut();
    setUser(null);
  };
  const current = (page) => (where.page === page || (page === "reports" && where.page === "report") ? "page" : undefined);
  let content;
  if (where.page === "report") content = html`<${ReportPage} key=${where.reportId} reportId=${where.reportId} />`;
  else if (where.page === "rows") content = html`<${RowsPage} key=${where.sourceId} channelId=${where.channelId} sourceId=${where.sourceId} />`;
  else if (where.page === "connections") content = html`<${ConnectionsPage} />`;
  else content = html`<${ReportsPage} />`;
  return html`<a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById("main").focus(); }}>${t("nav.skip")}</a>
    <header class="top">
      <span class="brand">Saleswire</span>
      <nav aria-label=${t("nav.label")}>
        <a href="#/reports" aria-current=${current("reports")}>${t("nav.reports")}</a>
        <a href="#/connections" aria-current=${current("connections")}>${t("nav.connections")}</a>
      </nav>
      <span class="user">${t("nav.signed_in_as", { name: user })}</span>
      <button type="button" onClick=${signOut} data-testid="sign-out">${t("nav.sign_out")}</button>
    </header>
    <main id="main" tabindex="-1">${content}</main>`;
}

await loadMessages();
const root = document.getElementById("root");
root.textContent = "";
render(html`<${App} />`, root);
