/**
 * The live dashboard: one self-contained HTML page (inline CSS and script, no CDN, no build step,
 * works offline) served at `/` by every replica and by `pompe dashboard`. It listens to
 * `/status/stream` (server-sent events, `{ replicas: [status | { replica, error }] }` every
 * second) and draws one card per replica: readiness, view, leader, committed height and slot,
 * executed commands/s with a one-minute sparkline, the replica-side phase latencies (stamp → ack
 * → commit → execute) as small histograms, peers up/down, refusals and faults by kind, and the
 * stable checkpoint when the status has one. Cards reflow to one column on a phone.
 *
 * Every figure carries `data-field` (and its card `data-replica`) so tests and scripts can read it.
 */

const STYLE = `
:root { color-scheme: light dark; --bg: #f6f7f9; --card: #fff; --ink: #1c2330; --dim: #667085; --line: #e3e6eb;
  --ok: #12805c; --bad: #c0362c; --warn: #b26b00; --accent: #2f5bd3; --bar: #7c9cf0; }
@media (prefers-color-scheme: dark) { :root { --bg: #12151b; --card: #1b2029; --ink: #e6e9ef; --dim: #98a2b3; --line: #2b323e;
  --ok: #3ccf91; --bad: #ff6b5e; --warn: #f0a93b; --accent: #7ea2ff; --bar: #5b7de0; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--ink); }
header { display: flex; flex-wrap: wrap; gap: .25rem 1rem; align-items: baseline; padding: .75rem 1rem; border-bottom: 1px solid var(--line); background: var(--card); }
header h1 { font-size: 1.1rem; margin: 0; }
header .meta { color: var(--dim); font-size: .85rem; }
#conn { margin-left: auto; font-size: .85rem; }
#conn.live { color: var(--ok); } #conn.down { color: var(--bad); }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 23rem), 1fr)); gap: .75rem; padding: .75rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: .75rem .9rem; min-width: 0; }
.card h2 { font-size: 1rem; margin: 0 0 .5rem; display: flex; gap: .4rem; align-items: center; flex-wrap: wrap; }
.badge { font-size: .72rem; font-weight: 600; padding: .1rem .45rem; border-radius: 99px; border: 1px solid currentColor; }
.badge.ok { color: var(--ok); } .badge.bad { color: var(--bad); } .badge.lead { color: var(--accent); }
.reason { color: var(--bad); font-size: .8rem; margin: -.25rem 0 .5rem; overflow-wrap: anywhere; }
.figs { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: .35rem .75rem; margin: 0 0 .5rem; }
.figs div { min-width: 0; } .figs dt { color: var(--dim); font-size: .72rem; text-transform: uppercase; letter-spacing: .03em; }
.figs dd { margin: 0; font-size: 1.05rem; font-variant-numeric: tabular-nums; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
h3 { font-size: .75rem; color: var(--dim); text-transform: uppercase; letter-spacing: .03em; margin: .6rem 0 .25rem; font-weight: 600; }
svg.spark { width: 100%; height: 38px; display: block; border-bottom: 1px solid var(--line); }
svg.spark polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; }
.phase { display: grid; grid-template-columns: 7.5rem 1fr 6.5rem; gap: .5rem; align-items: center; font-size: .8rem; }
.phase .q { text-align: right; font-variant-numeric: tabular-nums; color: var(--dim); white-space: nowrap; }
svg.hist { width: 100%; height: 22px; display: block; } svg.hist rect { fill: var(--bar); }
.chips { display: flex; flex-wrap: wrap; gap: .3rem; }
.chip { font-size: .75rem; padding: .05rem .45rem; border-radius: 6px; border: 1px solid var(--line); }
.chip.up { color: var(--ok); border-color: var(--ok); } .chip.down { color: var(--bad); border-color: var(--bad); }
table.kinds { border-collapse: collapse; font-size: .8rem; width: 100%; }
table.kinds td { padding: .05rem 0; border-bottom: 1px dotted var(--line); } table.kinds td:last-child { text-align: right; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; word-break: break-all; }
.none { color: var(--dim); font-size: .8rem; }
.card.error { border-color: var(--bad); }
footer { color: var(--dim); font-size: .75rem; padding: 0 1rem 1rem; }
`;

const SCRIPT = `
'use strict';
const PHASES = [['stamp_to_ack', 'stamp → ack'], ['ack_to_commit', 'ack → commit'], ['commit_to_execute', 'commit → execute'], ['stamp_to_execute', 'stamp → execute']];
const HISTORY = 60;
const rates = new Map();
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const num = (v, digits = 0) => typeof v === 'number' && isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: digits }) : '–';
const ms = (v) => v === null || v === undefined ? '–' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US');
const fig = (field, label, value) => '<div><dt>' + esc(label) + '</dt><dd data-field="' + field + '">' + value + '</dd></div>';
const duration = (s) => s < 120 ? s + ' s' : s < 7200 ? Math.round(s / 60) + ' min' : (s / 3600).toFixed(1) + ' h';

function spark(values) {
  // Newest sample at the right edge; the line keeps its width however the box is stretched.
  const max = Math.max(1, ...values);
  const x = (i) => ((HISTORY - values.length + i) * 100 / (HISTORY - 1)).toFixed(1);
  const pts = values.map((v, i) => x(i) + ',' + (36 - v / max * 34).toFixed(1)).join(' ');
  return '<h3>executed cmd/s, last minute (max ' + num(max) + ')</h3><svg class="spark" viewBox="0 0 100 38" preserveAspectRatio="none">' +
    (values.length < 2 ? '' : '<polyline vector-effect="non-scaling-stroke" points="' + pts + '"/>') + '</svg>';
}

function hist(counts) {
  const max = Math.max(1, ...counts);
  const w = 100 / counts.length;
  return '<svg class="hist" viewBox="0 0 100 22" preserveAspectRatio="none">' +
    counts.map((c, i) => c === 0 ? '' : '<rect x="' + (i * w + 0.4).toFixed(2) + '" width="' + (w - 0.8).toFixed(2) + '" y="' + (22 - Math.max(1.5, c / max * 22)).toFixed(2) + '" height="' + Math.max(1.5, c / max * 22).toFixed(2) + '"/>').join('') + '</svg>';
}

function kinds(field, record) {
  const rows = Object.entries(record || {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  if (rows.length === 0) return '<div class="none" data-field="' + field + '">none</div>';
  return '<table class="kinds" data-field="' + field + '">' + rows.map(([k, n]) => '<tr><td>' + esc(k) + '</td><td>' + num(n) + '</td></tr>').join('') + '</table>';
}

function flat(value, prefix = '') {
  if (value === null || typeof value !== 'object') return [[prefix || 'value', value]];
  return Object.entries(value).flatMap(([k, v]) => v !== null && typeof v === 'object' && !Array.isArray(v) ? flat(v, prefix + k + '.') : [[prefix + k, Array.isArray(v) ? v.join(', ') : v]]);
}

function card(s) {
  if (s.error !== undefined) {
    return '<section class="card error" data-replica="' + esc(s.replica) + '"><h2>replica ' + esc(s.replica) + ' <span class="badge bad" data-field="ready">unreachable</span></h2><div class="reason">' + esc(s.error) + '</div></section>';
  }
  const history = rates.get(s.replica) || [];
  const rate = s.rates ? s.rates.executedCommandsPerSecond : 0;
  history.push(rate);
  while (history.length > HISTORY) history.shift();
  rates.set(s.replica, history);
  const ready = s.ready || { ok: true, reason: '' };
  let h = '<section class="card" data-replica="' + esc(s.replica) + '">';
  h += '<h2>replica ' + esc(s.replica) + ' <span class="badge ' + (ready.ok ? 'ok' : 'bad') + '" data-field="ready">' + (ready.ok ? 'ready' : 'not ready') + '</span>' + (s.leading ? ' <span class="badge lead">leader</span>' : '') + '</h2>';
  if (!ready.ok) h += '<div class="reason" data-field="readyReason">' + esc(ready.reason) + '</div>';
  h += '<dl class="figs">' +
    fig('view', 'view', num(s.view)) + fig('leader', 'leader', s.leader === null || s.leader === undefined ? '–' : esc(s.leader)) + fig('executedCommandsPerSecond', 'exec cmd/s', num(rate)) +
    fig('committedHeight', 'committed height', num(s.committedHeight)) + fig('committedSlot', 'committed slot', num(s.committedSlot)) + fig('executedCommands', 'executed cmds', num(s.executedCommands)) +
    fig('frontier', 'sealed slot', num(s.frontier)) + fig('rss', 'memory', num(s.memoryMiB && s.memoryMiB.rss) + ' MiB') + fig('uptime', 'uptime', duration(s.uptimeSeconds || 0)) + '</dl>';
  h += spark(history);
  const lat = s.latency;
  if (lat) {
    h += '<h3>batch latency at this replica, last ' + esc(lat.windowSeconds) + ' s (p50 / p99 ms)</h3>';
    for (const [key, label] of PHASES) {
      const p = lat.recent[key];
      h += '<div class="phase" data-phase="' + key + '"><span>' + label + '</span>' + hist(p.counts) + '<span class="q" data-field="' + key + '">' + ms(p.p50Ms) + ' / ' + ms(p.p99Ms) + '</span></div>';
    }
  }
  h += '<h3>peers</h3><div class="chips" data-field="peers">' + (s.peers || []).map((p) => '<span class="chip ' + (p.up ? 'up' : 'down') + '">' + esc(p.id) + ' ' + (p.up ? 'up' : 'down') + '</span>').join('') + '</div>';
  h += '<h3>refusals</h3>' + kinds('refusals', s.refusals) + '<h3>faults</h3>' + kinds('faults', s.faults);
  const checkpoint = s.stableCheckpoint !== undefined ? s.stableCheckpoint : s.checkpoint;
  if (checkpoint !== undefined && checkpoint !== null) {
    h += '<h3>stable checkpoint</h3><table class="kinds" data-field="checkpoint">' + flat(checkpoint).map(([k, v]) => '<tr><td>' + esc(k) + '</td><td>' + esc(typeof v === 'number' ? num(v) : v) + '</td></tr>').join('') + '</table>';
  }
  return h + '</section>';
}

function render(snapshot) {
  const list = snapshot.replicas || [];
  const first = list.find((s) => s.error === undefined);
  if (first) {
    document.getElementById('meta').textContent = 'cluster ' + first.clusterId + ' · n=' + first.n + ' f=' + first.f + ' q=' + first.q + ' · v' + first.version;
  }
  document.getElementById('cards').innerHTML = list.map(card).join('');
  document.getElementById('updated').textContent = new Date().toLocaleTimeString();
}

const conn = document.getElementById('conn');
const source = new EventSource('status/stream');
source.onmessage = (ev) => { conn.textContent = 'live'; conn.className = 'live'; render(JSON.parse(ev.data)); };
source.onerror = () => { conn.textContent = 'reconnecting…'; conn.className = 'down'; };
`;

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pompe-ts dashboard</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>pompe-ts</h1><span class="meta" id="meta">connecting…</span><span id="conn">connecting…</span></header>
<main id="cards"></main>
<footer>updated <span id="updated">–</span> · JSON: <a href="status">status</a></footer>
<script>${SCRIPT}</script>
</body>
</html>
`;
