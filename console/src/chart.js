// A small SVG line chart: no chart library, nothing to load.
import { html } from "htm/preact";

const W = 320;
const H = 140;
const PAD = 28;
const COLORS = ["#2563eb", "#dc2626"];

export function LineChart({ title, times, series }) {
  const all = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  const max = Math.max(1, ...all);
  const t0 = times[0] || 0;
  const span = Math.max(1, (times[times.length - 1] || 0) - t0);
  const x = (t) => PAD + ((t - t0) / span) * (W - PAD - 8);
  const y = (v) => H - PAD + 8 - (v / max) * (H - PAD);
  const label = `${title}: ${series.map((s) => `${s.name} latest ${s.values[s.values.length - 1] ?? "none"}`).join(", ")}`;
  return html`<figure class="chart" data-testid="chart">
    <figcaption>${title}</figcaption>
    <svg viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${label}>
      <line x1=${PAD} y1=${H - PAD + 8} x2=${W - 8} y2=${H - PAD + 8} class="axis" />
      <line x1=${PAD} y1="8" x2=${PAD} y2=${H - PAD + 8} class="axis" />
      <text x="2" y="14" class="tick">${Math.round(max * 100) / 100}</text>
      <text x="2" y=${H - PAD + 8} class="tick">0</text>
      ${times.length > 0 && html`<text x=${PAD} y=${H - 4} class="tick">${new Date(t0).toLocaleTimeString()}</text>`}
      ${series.map((s, i) => {
        const pts = s.values
          .map((v, j) => (v === null || v === undefined ? null : `${x(times[j]).toFixed(1)},${y(v).toFixed(1)}`))
          .filter(Boolean);
        return html`<polyline points=${pts.join(" ")} fill="none" stroke=${COLORS[i % 2]} stroke-width="2" data-series=${s.name} />
          ${pts.map((p) => html`<circle cx=${p.split(",")[0]} cy=${p.split(",")[1]} r="2.5" fill=${COLORS[i % 2]} />`)}`;
      })}
    </svg>
    <div class="legend">${series.map((s, i) => html`<span style=${`color:${COLORS[i % 2]}`}>■ ${s.name}</span> `)}</div>
  </figure>`;
}
