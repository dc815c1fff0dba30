// Every call to the gateway's public API. The token lives in sessionStorage only (gone when the
// browser session ends) and travels in the Authorization header, never in a URL: no cookie carries
// it, so no other site can make the browser act for the user (no CSRF surface).

const TOKEN_KEY = "saleswire.token";
const USER_KEY = "saleswire.user";

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  user: () => sessionStorage.getItem(USER_KEY),
  signIn(token, user) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(USER_KEY, user);
  },
  signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
  },
};

const listeners = new Set();
/** Called with no argument when the gateway answers 401: the token was revoked or is wrong. */
export function onUnauthorized(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

async function body(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text };
  }
}

/** One API call. Resolves to {ok, status, data}; never throws for an HTTP error. */
export async function api(method, path, { json, params, token } = {}) {
  const headers = { Authorization: `Bearer ${token || session.token()}` };
  const init = { method, headers };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path + query(params), init);
  } catch (err) {
    return { ok: false, status: 0, data: { detail: String(err) } };
  }
  const data = await body(response);
  if (response.status === 401 && !token) listeners.forEach((fn) => fn());
  return { ok: response.ok, status: response.status, data };
}

/** The upload: XHR rather than fetch because only XHR reports upload progress. */
export function uploadWorkbook(params, file, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/sales/create" + query(params));
    xhr.setRequestHeader("Authorization", `Bearer ${session.token()}`);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.upload.addEventListener("load", () => onProgress(1));
    xhr.addEventListener("load", () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = { detail: xhr.responseText };
      }
      if (xhr.status === 401) listeners.forEach((fn) => fn());
      resolve({ ok: xhr.status >= 200 && xhr.status < 300, status: xhr.status, data });
    });
    xhr.addEventListener("error", () => resolve({ ok: false, status: 0, data: { detail: "network error" } }));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

/** A file download that needs the Bearer header: fetched as a blob, then saved through a link. */
export async function download(path, params, fallbackName) {
  const response = await fetch(path + query(params), { headers: { Authorization: `Bearer ${session.token()}` } });
  if (!response.ok) return { ok: false, status: response.status, data: await body(response) };
  const disposition = response.headers.get("Content-Disposition") || "";
  const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  const plain = /filename="([^"]+)"/i.exec(disposition);
  const name = utf8 ? decodeURIComponent(utf8[1]) : plain ? plain[1] : fallbackName;
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return { ok: true, status: response.status, data: null };
}
