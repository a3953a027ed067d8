// The Ignite console: a Preact single-page app (htm templates, no build
// step beyond bundling), hash-routed so the gateway serves one page.
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "htm/preact";
import { ApiError, call, follow, signIn, signOut, signedIn } from "./api.js";
import { LineChart } from "./chart.js";
import "./style.css";

const enc = encodeURIComponent;
const STATUSES = ["", "PENDING", "RUNNING", "COMPLETED", "FAILED", "TIMEOUT", "CANCELLED"];

function short(name) {
  return String(name || "").replace(/^[A-Z_]+?_(STATE|STATUS|TIER)_/, "").replace(/^DEPLOYMENT_STATE_/, "");
}
function when(ms) {
  return ms && ms !== "0" ? new Date(Number(ms)).toLocaleString() : "–";
}

function useRoute() {
  const [hash, setHash] = useState(location.hash || "#/");
  useEffect(() => {
    const changed = () => setHash(location.hash || "#/");
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return hash.slice(1).split("/").filter(Boolean).map(decodeURIComponent);
}

function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="error" role="alert"><strong>Something went wrong.</strong> ${error.message}</div>`;
}

function useLoad(load, deps) {
  const [state, setState] = useState({ loading: true, data: null, error: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ loading: false, data, error: null }),
      (error) => live && setState({ loading: false, data: null, error }),
    );
    return () => (live = false);
  }, [...deps, tick]);
  return [state, () => setTick((t) => t + 1)];
}

function SignIn({ onDone }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    setBusy(true);
    setError(null);
    try {
      await signIn(form.get("client_id").trim(), form.get("client_secret"));
      const who = await call("GET", "/v1/ignite/whoami");
      onDone((form.get("organization") || "").trim() || who.organization || who.organizationName);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  return html`<main class="narrow">
    <h1>Sign in to Ignite</h1>
    <p class="hint">Use a service account's client credentials. The token stays in this tab's memory.</p>
    <form onSubmit=${submit} aria-label="Sign in">
      <label>Client ID <input name="client_id" required autocomplete="username" autofocus /></label>
      <label>Client secret <input name="client_secret" type="password" required autocomplete="current-password" /></label>
      <label>Organization <input name="organization" placeholder="your account's own" /></label>
      <button type="submit" disabled=${busy}>${busy ? "Signing in…" : "Sign in"}</button>
    </form>
    <${ErrorBox} error=${error} />
  </main>`;
}

function AppList({ org }) {
  const [{ loading, data, error }] = useLoad(() => call("GET", `/v1/ignite/app/${enc(org)}?pageSize=100`), [org]);
  const apps = (data && data.apps) || [];
  return html`<main>
    <h1>Apps of ${org}</h1>
    <${ErrorBox} error=${error} />
    ${loading && html`<p aria-live="polite">Loading…</p>`}
    ${!loading && !error && apps.length === 0 && html`<p>No apps yet. Create one with <code>dodil ignite app create</code>.</p>`}
    ${apps.length > 0 && html`<table class="apps">
      <thead><tr><th>App</th><th>State</th><th>Active version</th><th>URLs</th></tr></thead>
      <tbody>${apps.map((app) => html`<tr>
        <td><a href=${`#/apps/${enc(app.name)}`}>${app.name}</a></td>
        <td><span class="badge">${short(app.deploymentState)}</span></td>
        <td data-testid="active-version">${app.activeVersion || "–"}</td>
        <td>${(app.publicUrls || []).map((u) => html`<a href=${u} rel="noreferrer">${u}</a> `)}</td>
      </tr>`)}</tbody></table>`}
  </main>`;
}

function Confirm({ text, onYes, onNo }) {
  const ref = useRef();
  useEffect(() => {
    ref.current.showModal();
  }, []);
  return html`<dialog ref=${ref} onCancel=${onNo} aria-label="Confirm">
    <p>${text}</p>
    <div class="row"><button onClick=${onNo} autofocus>Cancel</button>
    <button class="danger" onClick=${onYes}>Confirm</button></div>
  </dialog>`;
}

function Charts({ org, name }) {
  const [{ data, error }, reload] = useLoad(
    () => call("GET", `/console/api/series?organization=${enc(org)}&app=${enc(name)}`),
    [org, name],
  );
  useEffect(() => {
    const timer = setInterval(reload, 5000);
    return () => clearInterval(timer);
  }, []);
  const points = (data && data.points) || [];
  const t = points.map((p) => p.t);
  return html`<section aria-label="Charts">
    <h2>Last hour</h2>
    <${ErrorBox} error=${error} />
    ${data && !data.available && html`<p class="hint">The gateway was started without --server-metrics-url: no chart data.</p>`}
    ${data && data.error && html`<p class="error" role="alert">${data.error}</p>`}
    ${data && data.available && points.length === 0 && html`<p class="hint">Collecting: the first points appear after two reads (every ${data.scrapeSeconds} s).</p>`}
    <div class="charts">
      <${LineChart} title="Invocations" times=${t} series=${[{ name: "invocations", values: points.map((p) => p.invocations) }]} />
      <${LineChart} title="Latency (ms)" times=${t} series=${[{ name: "p50", values: points.map((p) => p.p50_ms) }, { name: "p99", values: points.map((p) => p.p99_ms) }]} />
      <${LineChart} title="Cold starts" times=${t} series=${[{ name: "cold starts", values: points.map((p) => p.cold_starts) }]} />
      <${LineChart} title="Ready pods" times=${t} series=${[{ name: "ready pods", values: points.map((p) => p.ready_pods) }]} />
    </div>
  </section>`;
}

function LiveLogs({ org, name, executionId }) {
  const [lines, setLines] = useState([]);
  const [following, setFollowing] = useState(!executionId);
  const [error, setError] = useState(null);
  useEffect(() => {
    setLines([]);
    setError(null);
    const query = executionId
      ? `executionId=${enc(executionId)}`
      : `follow=${following}&sinceMs=${Date.now() - 3600 * 1000}`;
    return follow(
      `/v1/ignite/app/${enc(org)}/${enc(name)}/logs?${query}`,
      (entry) => setLines((old) => [...old.slice(-499), entry]),
      setError,
    );
  }, [org, name, executionId, following]);
  return html`<section aria-label="Logs">
    <h2>Logs ${!executionId && html`<label class="inline"><input type="checkbox" checked=${following}
      onChange=${(e) => setFollowing(e.target.checked)} /> follow</label>`}</h2>
    <${ErrorBox} error=${error} />
    <pre class="logs" tabindex="0" aria-live=${following ? "polite" : "off"} data-testid="logs">${lines.map(
      (e) => `${new Date(Number(e.timestampMs)).toISOString()} ${short(e.stream)} ${e.executionId || ""} ${e.message}\n`,
    )}</pre>
  </section>`;
}

function Executions({ org, name }) {
  const [status, setStatus] = useState("");
  const [{ data, error }, reload] = useLoad(
    () => call("GET", `/v1/ignite/execution/${enc(org)}?appName=${enc(name)}&pageSize=50${status ? `&status=EXECUTION_STATUS_${status}` : ""}`),
    [org, name, status],
  );
  const rows = (data && data.executions) || [];
  return html`<section aria-label="Executions">
    <h2>Executions</h2>
    <div class="row">
      <label>Status <select value=${status} onChange=${(e) => setStatus(e.target.value)}>
        ${STATUSES.map((s) => html`<option value=${s}>${s || "any"}</option>`)}</select></label>
      <button onClick=${reload}>Refresh</button>
    </div>
    <${ErrorBox} error=${error} />
    ${rows.length === 0 && !error && html`<p>No executions${status ? ` with status ${status}` : ""}.</p>`}
    ${rows.length > 0 && html`<table><thead><tr><th>Execution</th><th>Status</th><th>Error class</th><th>Created</th></tr></thead>
    <tbody>${rows.map((x) => html`<tr>
      <td><a href=${`#/apps/${enc(name)}/executions/${enc(x.id)}`}>${x.id}</a></td>
      <td>${short(x.status)}</td><td>${x.errorClass || "–"}</td><td>${when(x.createdAtMs)}</td></tr>`)}</tbody></table>`}
  </section>`;
}

function tagUrl(app, tag) {
  // <tag>---<app>-<org>.<domain>: the app's own URL with the tag in front.
  const url = (app.publicUrls || [])[0];
  return url ? url.replace("://", `://${tag}---`) : "";
}

function EnvNames({ env }) {
  const names = Object.keys(env || {});
  if (!names.length) return "none";
  return names.map((k) => html`<code>${k}</code>=<span class="hidden-value" aria-label="value hidden">••••</span> `);
}

function VersionSettings({ settings }) {
  const s = settings || {};
  const l = s.limits || {};
  const limits = [l.memoryMb && `${l.memoryMb} MB`, l.cpuMillicores && `${l.cpuMillicores}m CPU`, l.timeoutSecs && `${l.timeoutSecs}s`].filter(Boolean);
  const scaling = s.scaling || {};
  return html`<span class="settings">${short(s.resourceTier)}${limits.length ? `, ${limits.join(", ")}` : ""},
    concurrency ${s.maxConcurrency || "default"}, ${scaling.maxReplicas || 10} pods max, ${scaling.reservedCapacity || 0} warm;
    env <${EnvNames} env=${s.env} /></span>`;
}

function Traffic({ app }) {
  const split = (app.traffic || []).length ? app.traffic : app.activeVersion ? [{ version: app.activeVersion, percent: 100 }] : [];
  const tags = Object.entries(app.tags || {}).sort();
  const rollout = app.rollout || {};
  const policy = rollout.policy || {};
  return html`<section aria-label="Traffic"><h2>Traffic</h2>
    ${split.length === 0 && html`<p>No version serves yet.</p>`}
    ${split.length > 0 && html`<table data-testid="traffic"><thead><tr><th>Version</th><th>Share</th></tr></thead>
      <tbody>${split.map((t) => html`<tr><td>${t.version}</td><td>
        <span class="share" style=${`width:${t.percent}%`}></span> ${t.percent}%</td></tr>`)}</tbody></table>`}
    <h3>Tags</h3>
    ${tags.length === 0 ? html`<p>No tags. <code>dodil ignite version tag ${org(app)}:${app.name} N TAG</code> gives a version a URL of its own.</p>`
      : html`<ul data-testid="tags">${tags.map(([tag, version]) => html`<li><strong>${tag}</strong> → version ${version}
          ${tagUrl(app, tag) && html` <code>${tagUrl(app, tag)}</code>`}</li>`)}</ul>`}
    ${rollout.state && html`<h3>Rollout</h3><p data-testid="rollout"><span class="badge">${short(rollout.state)}</span>
      version ${rollout.fromVersion} → ${rollout.toVersion}, ${(policy.steps || []).join("% → ")}%, ${policy.stepSecs || 0}s a step</p>
      <p class="hint">${rollout.decision}</p>`}
  </section>`;
}

function org(app) {
  return app.organizationName || String(app.id || "").split("/")[0];
}

function AppPage({ org: orgName, name }) {
  const [{ data, error }, reload] = useLoad(async () => {
    const [app, versions] = await Promise.all([
      call("GET", `/v1/ignite/app/${enc(orgName)}/${enc(name)}`),
      call("GET", `/v1/ignite/app/${enc(orgName)}/${enc(name)}/versions`),
    ]);
    return { app: app.app, versions: versions.versions || [] };
  }, [orgName, name]);
  const [confirm, setConfirm] = useState(null);
  const [actionError, setActionError] = useState(null);
  const [notice, setNotice] = useState("");
  async function act(text, method, path, body, done) {
    setConfirm({
      text,
      onYes: async () => {
        setConfirm(null);
        setActionError(null);
        try {
          const answer = await call(method, path, body);
          setNotice(typeof done === "function" ? done(answer) : done);
          reload();
        } catch (e) {
          setActionError(e);
        }
      },
    });
  }
  const app = data && data.app;
  const base = `/v1/ignite/app/${enc(orgName)}/${enc(name)}`;
  const published = (answer) => answer.unchanged
    ? `Nothing changed: version ${answer.publishedVersion} stays active.`
    : `The draft was published as version ${answer.publishedVersion}; it serves.`;
  return html`<main>
    <p><a href="#/apps">← Apps</a></p>
    <h1>${name}</h1>
    <${ErrorBox} error=${error} />
    ${app && html`<dl class="facts">
      <dt>State</dt><dd>${short(app.deploymentState)}</dd>
      <dt>Active version</dt><dd data-testid="app-active-version">${app.activeVersion || "–"}</dd>
      <dt>URLs</dt><dd>${(app.publicUrls || []).join(" ") || "–"}</dd>
    </dl>`}
    <p class="notice" role="status">${notice}</p>
    <${ErrorBox} error=${actionError} />
    ${app && html`<${Traffic} app=${app} />`}
    ${data && html`<section aria-label="Versions"><h2>Versions</h2>
      <button onClick=${() => act(`Publish the draft of ${name} as a new version? It takes the traffic once a pod of it is ready; if none becomes ready, nothing changes.`, "POST", `${base}/draft/publish`, {}, published)}>Publish draft</button>
      <table><thead><tr><th>Version</th><th>Status</th><th>Traffic</th><th>Tags</th><th>Settings</th><th>Published by</th><th>Message</th><th>Created</th><th></th></tr></thead>
      <tbody>${data.versions.map((v) => html`<tr data-testid=${`version-${v.version}`}>
        <td>${v.version}</td><td>${short(v.status)}</td><td>${v.trafficPercent ? `${v.trafficPercent}%` : "–"}</td>
        <td>${(v.tags || []).join(", ") || "–"}</td>
        <td><${VersionSettings} settings=${v.settings} /></td>
        <td>${v.publishedBy || "–"}</td><td>${v.message || v.error || "–"}</td><td>${when(v.createdAtMs)}</td>
        <td>${v.version !== app.activeVersion && !["VERSION_STATUS_FAILED", "VERSION_STATUS_STARTING"].includes(v.status) && (v.version < app.activeVersion
          ? html`<button onClick=${() => act(`Roll ${name} back to version ${v.version}? It takes all the traffic once a pod of it is ready, with its own settings.`, "POST", `${base}/rollback`, { version: v.version }, `Version ${v.version} is active.`)}>Roll back to ${v.version}</button>`
          : html`<button onClick=${() => act(`Promote version ${v.version} of ${name}? It takes all the traffic once a pod of it is ready.`, "POST", `${base}/traffic`, { traffic: [{ version: v.version, percent: 100 }] }, `Version ${v.version} takes all the traffic.`)}>Promote ${v.version}</button>`)}</td>
      </tr>`)}</tbody></table></section>`}
    ${app && html`<section aria-label="Settings"><h2>Settings</h2>
      <dl class="facts">
        <dt>Runtime</dt><dd>${Object.keys(app.runtime || {}).filter((k) => app.runtime[k]).join(", ") || "–"}</dd>
        <dt>Resource tier</dt><dd>${short(app.resourceTier)}</dd>
        <dt>Max concurrency</dt><dd>${app.maxConcurrency || "default"}</dd>
        <dt>Unauthenticated calls</dt><dd>${app.allowUnauthenticated ? "allowed" : "refused"}</dd>
        <dt>Environment</dt><dd><${EnvNames} env=${app.env} /></dd>
      </dl></section>`}
    ${app && html`<${Charts} org=${orgName} name=${name} />`}
    ${app && html`<${Executions} org=${orgName} name=${name} />`}
    ${app && html`<${LiveLogs} org=${orgName} name=${name} />`}
    ${confirm && html`<${Confirm} text=${confirm.text} onYes=${confirm.onYes} onNo=${() => setConfirm(null)} />`}
  </main>`;
}

function ExecutionPage({ org, name, id }) {
  const [{ data, error }] = useLoad(() => call("GET", `/v1/ignite/execution/${enc(org)}/${enc(id)}`), [org, id]);
  const x = data && data.execution;
  const m = (x && x.metrics) || {};
  return html`<main>
    <p><a href=${`#/apps/${enc(name)}`}>← ${name}</a></p>
    <h1>Execution <code>${id}</code></h1>
    <${ErrorBox} error=${error} />
    ${x && html`<dl class="facts">
      <dt>Status</dt><dd data-testid="execution-status">${short(x.status)}</dd>
      <dt>Error class</dt><dd>${x.errorClass || "–"}</dd>
      <dt>Error</dt><dd>${x.error || "–"}</dd>
      <dt>HTTP status</dt><dd>${x.statusCode || "–"}</dd>
      <dt>Version</dt><dd>${x.functionVersion || "–"}</dd>
      <dt>Attempts</dt><dd>${x.attempts}</dd>
      <dt>Created</dt><dd>${when(x.createdAtMs)}</dd>
      <dt>Completed</dt><dd>${when(x.completedAtMs)}</dd>
      <dt>Execution time</dt><dd>${m.executionMs || 0} ms</dd>
      <dt>Cold start</dt><dd>${m.coldStartMs || 0} ms</dd>
      <dt>Billed</dt><dd>${m.billedDurationMs || 0} ms</dd>
      <dt>CPU</dt><dd>${m.cpuUsedMs || 0} ms</dd>
      <dt>Memory</dt><dd>${m.memoryUsedMb || 0} MB</dd>
      <dt>Result size</dt><dd>${m.resultSizeBytes || 0} bytes</dd>
    </dl>`}
    ${x && html`<${LiveLogs} org=${org} name=${name} executionId=${id} />`}
  </main>`;
}

function Console() {
  const route = useRoute();
  const [org, setOrg] = useState("");
  if (!signedIn() || !org) {
    return html`<${SignIn} onDone=${(o) => {
      setOrg(o);
      location.hash = "#/apps";
    }} />`;
  }
  let page;
  if (route[0] === "apps" && route[1] && route[2] === "executions" && route[3]) {
    page = html`<${ExecutionPage} org=${org} name=${route[1]} id=${route[3]} />`;
  } else if (route[0] === "apps" && route[1]) {
    page = html`<${AppPage} org=${org} name=${route[1]} />`;
  } else {
    page = html`<${AppList} org=${org} />`;
  }
  return html`<header><a href="#/apps" class="brand">Ignite</a><span>${org}</span>
    <button onClick=${() => { signOut(); setOrg(""); }}>Sign out</button></header>${page}`;
}

render(html`<${Console} />`, document.getElementById("root"));
export { ApiError };
