/**
 * The live calls page: one self-contained document, nothing loaded from elsewhere. Its script
 * and style are served under a Content-Security-Policy naming their hashes (page.ts), so
 * nothing else can run there; every value from a call or a SIP message is set as text, never
 * as markup. (Plain strings below: no template literals in the page's script.)
 */
export const PAGE_STYLE = `
:root { --fg: #1d2330; --muted: #6b7280; --line: #d6dbe3; --in: #0b6bcb; --out: #0f7b3f; --bg: #f7f8fa; --sel: #fff6d6; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1em; align-items: center; padding: .6em 1em; background: #1d2330; color: #fff; }
header h1 { font-size: 1.05em; margin: 0; font-weight: 600; }
header .state { margin-left: auto; font-size: .85em; color: #c8d0dc; }
main { display: grid; grid-template-columns: minmax(0, 1.1fr) minmax(0, 1fr); gap: 1em; padding: 1em; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .6em; overflow: auto; }
h2 { font-size: .95em; margin: .2em 0 .6em; }
table { border-collapse: collapse; width: 100%; font-size: .85em; }
th, td { text-align: left; padding: .25em .5em; border-bottom: 1px solid var(--line); white-space: nowrap; }
td.wrap { white-space: normal; word-break: break-all; }
tbody tr { cursor: pointer; }
tbody tr:hover { background: #eef3fb; }
tbody tr.selected { background: var(--sel); }
.st { font-weight: 600; }
.st-answered { color: var(--out); } .st-hangup { color: var(--muted); } .st-ringing, .st-progressing, .st-dialing { color: var(--in); }
form.login { display: flex; gap: .5em; padding: 1em; }
svg text { font: 12px ui-monospace, monospace; }
svg .col { font: 600 13px system-ui, sans-serif; }
svg .msg { cursor: pointer; }
svg .msg:hover text { text-decoration: underline; }
pre { background: #f2f4f7; padding: .6em; font-size: .8em; white-space: pre-wrap; word-break: break-all; }
.muted { color: var(--muted); }
`;

export const PAGE_SCRIPT = `
'use strict';
var TOKEN_KEY = 'sipkit-trunk-token';
var calls = new Map();
var selected = null;
var ladderTimer = null;
var source = null;
function token() { return localStorage.getItem(TOKEN_KEY) || ''; }
function el(tag, attrs, text) {
  var e = document.createElement(tag);
  if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function svg(tag, attrs, text) {
  var e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (var k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = String(text);
  return e;
}
function setState(text) { document.getElementById('state').textContent = text; }
function api(path) {
  return fetch(path, { headers: { authorization: 'Bearer ' + token() } }).then(function (r) {
    if (r.status === 401) { showLogin('The token was refused.'); throw new Error('unauthorized'); }
    if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
    return r.json();
  });
}
function time(iso) { return iso ? new Date(iso).toLocaleTimeString() : ''; }
function duration(c) {
  if (!c.tm_answer) return '';
  var end = c.tm_hangup ? Date.parse(c.tm_hangup) : Date.now();
  return Math.max(0, Math.round((end - Date.parse(c.tm_answer)) / 1000)) + ' s';
}
function row(c) {
  var tr = el('tr', { 'data-call-id': c.id, 'data-status': c.status });
  if (c.id === selected) tr.className = 'selected';
  tr.appendChild(el('td', null, time(c.tm_create)));
  tr.appendChild(el('td', { class: 'st st-' + c.status }, c.status));
  tr.appendChild(el('td', { class: 'wrap', title: c.source }, c.extension ? c.extension + '@' + (c.trunk_domain || '') : c.source));
  tr.appendChild(el('td', { class: 'wrap' }, c.destination));
  tr.appendChild(el('td', null, duration(c)));
  tr.appendChild(el('td', null, c.hangup_code === null ? (c.hangup_by || '') : c.hangup_code + ' ' + (c.hangup_reason || '')));
  tr.appendChild(el('td', null, c.charge ? c.charge.amount + ' ' + c.charge.currency : ''));
  tr.addEventListener('click', function () { select(c.id); });
  return tr;
}
function render() {
  var body = document.getElementById('calls');
  var list = Array.from(calls.values()).sort(function (a, b) { return Date.parse(b.tm_create) - Date.parse(a.tm_create); }).slice(0, 200);
  body.replaceChildren.apply(body, list.map(row));
  var live = list.filter(function (c) { return c.status !== 'hangup'; }).length;
  document.getElementById('count').textContent = live + ' live, ' + list.length + ' shown';
}
function upsert(c) {
  calls.set(c.id, c);
  if (calls.size > 500) {
    var oldest = Array.from(calls.values()).sort(function (a, b) { return Date.parse(a.tm_create) - Date.parse(b.tm_create); })[0];
    calls.delete(oldest.id);
  }
}
function select(id) {
  selected = id;
  render();
  loadLadder();
}
var COLS = { caller: 90, trunk: 330, destination: 570 };
function ends(m) {
  if (m.peer === 'caller') return m.direction === 'in' ? ['caller', 'trunk'] : ['trunk', 'caller'];
  return m.direction === 'out' ? ['trunk', 'destination'] : ['destination', 'trunk'];
}
function drawLadder(messages) {
  var box = document.getElementById('ladder-box');
  var detail = document.getElementById('message');
  detail.textContent = '';
  var c = calls.get(selected);
  document.getElementById('ladder-title').textContent = c ? c.destination + ' (' + c.status + ')' : selected;
  var step = 34, top = 50;
  var height = top + messages.length * step + 20;
  var s = svg('svg', { id: 'ladder', width: 660, height: height, viewBox: '0 0 660 ' + height, 'data-messages': messages.length });
  var defs = svg('defs', {});
  ['in', 'out'].forEach(function (d) {
    var mk = svg('marker', { id: 'arrow-' + d, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
    mk.appendChild(svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: d === 'in' ? '#0b6bcb' : '#0f7b3f' }));
    defs.appendChild(mk);
  });
  s.appendChild(defs);
  Object.keys(COLS).forEach(function (k) {
    s.appendChild(svg('text', { class: 'col', x: COLS[k], y: 20, 'text-anchor': 'middle' }, k === 'trunk' ? 'trunk' : k));
    s.appendChild(svg('line', { x1: COLS[k], y1: 30, x2: COLS[k], y2: height - 10, stroke: '#9aa3b2', 'stroke-dasharray': '4 3' }));
  });
  var t0 = messages.length ? Date.parse(messages[0].at) : 0;
  messages.forEach(function (m, i) {
    var y = top + i * step;
    var e = ends(m);
    var x1 = COLS[e[0]], x2 = COLS[e[1]];
    var color = m.direction === 'in' ? '#0b6bcb' : '#0f7b3f';
    var g = svg('g', { class: 'msg', 'data-first-line': m.first_line, 'data-from': e[0], 'data-to': e[1] });
    g.appendChild(svg('line', { x1: x1, y1: y, x2: x2, y2: y, stroke: color, 'stroke-width': 1.5, 'marker-end': 'url(#arrow-' + m.direction + ')' }));
    var label = m.first_line.replace(/ SIP\\/2\\.0$/, '').replace(/^SIP\\/2\\.0 /, '');
    if (label.length > 31) label = label.slice(0, 30) + '\\u2026';
    g.appendChild(svg('text', { x: (x1 + x2) / 2, y: y - 5, 'text-anchor': 'middle', fill: color }, label));
    g.appendChild(svg('text', { x: 4, y: y + 4, fill: '#6b7280' }, '+' + ((Date.parse(m.at) - t0) / 1000).toFixed(3)));
    g.addEventListener('click', function () { detail.textContent = m.at + '  ' + m.direction + ' ' + m.remote + '\\n\\n' + m.text; });
    s.appendChild(g);
  });
  box.replaceChildren(s);
  if (!messages.length) box.appendChild(el('p', { class: 'muted' }, 'No messages captured for this call (capture off, or forgotten).'));
}
function loadLadder() {
  if (!selected) return;
  var id = selected;
  api('/v1.0/calls/' + encodeURIComponent(id) + '/messages').then(function (ms) { if (id === selected) drawLadder(ms); }, function (e) {
    document.getElementById('ladder-box').replaceChildren(el('p', { class: 'muted' }, String(e.message)));
  });
}
function connect() {
  if (source) source.close();
  source = new EventSource('/v1.0/events?token=' + encodeURIComponent(token()));
  source.addEventListener('open', function () { setState('live'); });
  source.addEventListener('error', function () { setState('reconnecting\\u2026'); });
  source.addEventListener('call', function (ev) {
    var c = JSON.parse(ev.data);
    upsert(c);
    render();
    if (c.id === selected) {
      clearTimeout(ladderTimer);
      ladderTimer = setTimeout(loadLadder, 200);
    }
  });
}
function start() {
  document.getElementById('login').hidden = true;
  document.getElementById('app').hidden = false;
  api('/v1.0/calls?page_size=200').then(function (page) {
    page.result.forEach(upsert);
    render();
    connect();
  }, function (e) { setState(String(e.message)); });
}
function showLogin(why) {
  if (source) source.close();
  document.getElementById('app').hidden = true;
  document.getElementById('login').hidden = false;
  document.getElementById('login-why').textContent = why || '';
}
document.getElementById('login').addEventListener('submit', function (ev) {
  ev.preventDefault();
  localStorage.setItem(TOKEN_KEY, document.getElementById('token').value.trim());
  start();
});
document.getElementById('logout').addEventListener('click', function () { localStorage.removeItem(TOKEN_KEY); showLogin(''); });
setInterval(function () { if (calls.size) render(); }, 1000);
if (token()) start(); else showLogin('');
`;

export function pageHtml(): string {
  return (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">' +
    '<title>sipkit trunk: live calls</title><style>' +
    PAGE_STYLE +
    '</style></head><body>' +
    '<header><h1>sipkit trunk: live calls</h1><span id="count"></span><span class="state" id="state">connecting</span><button id="logout" type="button">Forget token</button></header>' +
    '<form class="login" id="login" hidden><label>API token <input id="token" type="password" autocomplete="off" required></label><button type="submit">Show calls</button><span id="login-why" class="muted"></span></form>' +
    '<main id="app" hidden><section><h2>Calls</h2><table><thead><tr><th>created</th><th>state</th><th>from</th><th>to</th><th>talk</th><th>hangup</th><th>charge</th></tr></thead><tbody id="calls"></tbody></table></section>' +
    '<section><h2>Ladder: <span id="ladder-title" class="muted">select a call</span></h2><div id="ladder-box"></div><pre id="message"></pre></section></main>' +
    '<script>' +
    PAGE_SCRIPT +
    '</script></body></html>\n'
  );
}
