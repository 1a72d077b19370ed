// The device status page: reads the agent's JSON routes (/v1/status, /v1/models, /v1/drift)
// every few seconds. No build step; Chart.js is served from the npm package.
'use strict';
(function () {
  const POLL_MS = 2000;
  const HISTORY = 90; // samples kept for the latency chart
  const latency = { labels: [], series: new Map() };
  let latencyChart;
  const driftCharts = new Map();

  const $ = (id) => document.getElementById(id);
  const fmt = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : v == null ? '-' : String(v));

  async function get(path) {
    const headers = {};
    const token = localStorage.getItem('edge-agent-token');
    if (token) headers.authorization = 'Bearer ' + token;
    const res = await fetch(path, { headers });
    if (res.status === 401) {
      askToken();
      throw new Error('unauthorized');
    }
    if (res.status === 404) return undefined;
    return res.json();
  }

  function askToken() {
    const dlg = $('auth');
    if (dlg.open) return;
    dlg.showModal();
    dlg.addEventListener('close', () => localStorage.setItem('edge-agent-token', $('token').value), { once: true });
  }

  function facts(el, entries) {
    el.replaceChildren();
    for (const [k, v] of entries) {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      if (v instanceof Node) dd.append(v);
      else dd.textContent = fmt(v);
      el.append(dt, dd);
    }
  }

  function stateLabel(text, level) {
    const s = document.createElement('span');
    s.className = 'state ' + level;
    s.textContent = text;
    return s;
  }

  function duration(seconds) {
    if (typeof seconds !== 'number' || !isFinite(seconds)) return '-';
    if (seconds < 90) return Math.round(seconds) + ' s';
    if (seconds < 5400) return Math.round(seconds / 60) + ' min';
    if (seconds < 172800) return (seconds / 3600).toFixed(1) + ' h';
    return (seconds / 86400).toFixed(1) + ' days';
  }

  function kb(bytes) {
    return typeof bytes === 'number' ? (bytes / 1024).toFixed(bytes < 10240 ? 1 : 0) + ' KB' : '-';
  }

  /** The telemetry buffer and the broker link in words, for a device owner (not a dump of keys). */
  function telemetryFacts(t, f) {
    const out = [];
    if (t && typeof t === 'object') {
      out.push(['waiting to send', `${t.depth ?? 0} records, ${kb(t.bytes)} of ${kb(t.capacityBytes ?? t.maxBytes)}` +
        (t.depth ? `, oldest ${duration(t.oldestAgeSeconds)} old` : '')]);
      out.push(['accepted, delivered', `${t.accepted ?? 0} accepted, ${t.delivered ?? 0} delivered to the fleet`]);
      const lost = [];
      if (t.evicted) lost.push(`${t.evicted} evicted (buffer full)`);
      if (t.quarantined) lost.push(`${t.quarantined} set aside as undeliverable`);
      out.push(['set aside', lost.length ? stateLabel(lost.join(', '), 'warn') : stateLabel('none', 'ok')]);
      if (t.failing || t.diskFull) out.push(['storage', stateLabel(t.failing || 'disk full', 'bad')]);
    } else {
      out.push(['buffer', 'not configured']);
    }
    if (f && typeof f === 'object') {
      const connected = f.state === 'connected';
      out.push(['fleet broker', f.broker
        ? stateLabel(`${f.state}${f.broker ? ' to ' + f.broker : ''}${connected && f.connectedSince ? ' since ' + new Date(f.connectedSince).toLocaleString() : ''}`, connected ? 'ok' : 'warn')
        : 'none configured: running offline']);
      if (!connected && f.lastError) out.push(['last broker error', f.lastError]);
      const pending = f.commands && typeof f.commands === 'object' ? f.commands.received : undefined;
      if (typeof pending === 'number') out.push(['fleet commands', `${pending} received`]);
    }
    return out;
  }

  const STEP_LEVEL = { committed: 'ok', shadow_passed: 'ok', probation: 'warn', shadow: 'warn', rolled_back: 'bad', failed: 'bad' };

  /** Each model's slot (active, previous, candidate) and its recent rollout steps with their reasons. */
  function renderRollouts(rollouts) {
    const el = $('rollouts');
    const models = rollouts && typeof rollouts === 'object' ? Object.entries(rollouts) : [];
    if (!models.length) return;
    el.replaceChildren();
    for (const [name, r] of models) {
      if (!r || typeof r !== 'object') continue;
      const h = document.createElement('h3');
      h.textContent = `${name}: serving ${r.active ?? '-'}` + (r.candidate ? `, trying ${r.candidate.version} (${r.candidate.phase})` : '') + (r.previous ? `, ${r.previous} kept for rollback` : '');
      const ol = document.createElement('ol');
      ol.className = 'history';
      for (const e of (Array.isArray(r.events) ? r.events : []).slice().reverse()) {
        if (!e || typeof e !== 'object') continue;
        const li = document.createElement('li');
        li.append(`${e.at ? new Date(e.at).toLocaleString() : ''} ${e.version ?? ''} `, stateLabel(String(e.step ?? '?').replace('_', ' '), STEP_LEVEL[e.step] || 'warn'));
        if (e.reason) li.append(`: ${e.reason}`);
        ol.append(li);
      }
      if (!ol.children.length) {
        const li = document.createElement('li');
        li.className = 'muted';
        li.textContent = 'no rollout yet';
        ol.append(li);
      }
      el.append(h, ol);
    }
  }

  function modelRows(models) {
    const list = Array.isArray(models) ? models : models && Array.isArray(models.models) ? models.models : [];
    return list.map((m) => ({
      name: m.name,
      version: m.version ?? m.active?.version,
      backend: m.backend ?? m.active?.backend,
      slot: m.slot ?? m.state ?? m.status ?? (m.candidate ? 'candidate ' + m.candidate.version : 'active'),
      p50: m.latency?.p50Ms ?? m.latency?.p50 ?? m.p50Ms,
      p99: m.latency?.p99Ms ?? m.latency?.p99 ?? m.p99Ms,
      queue: m.queue?.depth ?? m.queueDepth ?? m.queue,
    }));
  }

  function renderModels(rows) {
    const body = $('models').tBodies[0];
    body.replaceChildren();
    if (!rows.length) {
      const tr = body.insertRow();
      const td = tr.insertCell();
      td.colSpan = 7;
      td.className = 'muted';
      td.textContent = 'no models loaded';
    }
    for (const r of rows) {
      const tr = body.insertRow();
      for (const v of [r.name, r.version, r.backend, r.slot, r.p50, r.p99, r.queue]) tr.insertCell().textContent = fmt(v);
    }
    const now = new Date().toLocaleTimeString();
    latency.labels.push(now);
    if (latency.labels.length > HISTORY) latency.labels.shift();
    for (const r of rows) {
      for (const q of ['p50', 'p99']) {
        if (typeof r[q] !== 'number') continue;
        const key = r.name + ' ' + q;
        const s = latency.series.get(key) || [];
        while (s.length < latency.labels.length - 1) s.push(null);
        s.push(r[q]);
        if (s.length > HISTORY) s.shift();
        latency.series.set(key, s);
      }
    }
    drawLatency();
  }

  function drawLatency() {
    if (typeof Chart === 'undefined') return;
    const datasets = [...latency.series.entries()].map(([label, data], i) => ({
      label, data, borderWidth: 2, pointRadius: 0, spanGaps: true,
      borderDash: label.endsWith('p99') ? [6, 3] : [], // p99 dashed: not told by colour alone
    }));
    if (!latencyChart) {
      latencyChart = new Chart($('latency'), {
        type: 'line',
        data: { labels: latency.labels, datasets },
        options: { animation: false, maintainAspectRatio: false, scales: { y: { title: { display: true, text: 'ms' }, beginAtZero: true } } },
      });
    } else {
      latencyChart.data.labels = latency.labels;
      latencyChart.data.datasets = datasets;
      latencyChart.update();
    }
  }

  const LEVEL = { ok: 'ok', warn: 'warn', drift: 'bad', alert: 'bad' };

  /**
   * One model's drift window. The verdict, its colour and its reason come from the agent
   * (`shown`, agent/drift/verdict.ts: the same function as the fleet dashboard and
   * `edge-fleet drift`); this page only prints them.
   */
  function renderDrift(drift) {
    const el = $('drift');
    const reports = drift && drift.models && typeof drift.models === 'object' ? Object.values(drift.models) : [];
    if (!reports.length) return;
    el.replaceChildren();
    for (const rep of reports) {
      if (!rep || typeof rep !== 'object') continue;
      const shown = rep.shown && typeof rep.shown === 'object' ? rep.shown : { verdict: 'none', level: 'muted', scores: false, reason: 'no verdict from the agent' };
      const h = document.createElement('h3');
      h.append(`${rep.model ?? 'model'} ${rep.version ?? ''} `, stateLabel(shown.verdict, shown.level));
      const meta = document.createElement('p');
      meta.className = 'muted';
      meta.textContent = `window of ${fmt(rep.window?.size)} inferences, ended ${rep.window?.end ? new Date(rep.window.end).toLocaleString() : '-'}` +
        (shown.reason ? ` - ${shown.reason}` : rep.alpha?.tests ? ` - each test held to a false-alarm rate of ${fmt(rep.alpha.warn)} (warn) over ${rep.alpha.tests} tests` : '');
      el.append(h, meta);
      // Too few observations to judge: no scores that would read as alarms.
      if (!shown.scores) continue;
      for (const f of Array.isArray(rep.features) ? rep.features : []) el.append(featureBlock(rep, f));
    }
  }

  function featureBlock(rep, f) {
    const div = document.createElement('div');
    div.className = 'feature';
    const verdict = String(f.verdict ?? 'ok');
    const p = document.createElement('p');
    // Each statistic beside the level it warns at for this window's size (calibrated), else the raw value.
    const scores = Array.isArray(f.tests) && f.tests.length
      ? f.tests.map((x) => `${x.statistic} ${fmt(x.value)} (warns at ${fmt(x.warnAt)})`).join(', ')
      : ['psi', 'js', 'wasserstein', 'ks']
        .filter((k) => typeof (f.stats?.[k] ?? f[k]) === 'number')
        .map((k) => `${k} ${fmt(f.stats?.[k] ?? f[k])}`).join(', ');
    p.append(`${f.name}: `, stateLabel(verdict, LEVEL[verdict.toLowerCase()] || 'warn'), ` ${scores}`);
    div.append(p);
    const hist = f.histogram || f.chart;
    if (hist && Array.isArray(hist.reference) && Array.isArray(hist.current) && typeof Chart !== 'undefined') {
      const wrap = document.createElement('div');
      wrap.className = 'chart';
      const canvas = document.createElement('canvas');
      canvas.setAttribute('role', 'img');
      canvas.setAttribute('aria-label', `${f.name}: reference and current distribution`);
      wrap.append(canvas);
      div.append(wrap);
      const labels = hist.labels || hist.reference.map((_, i) => (hist.edges ? fmt(hist.edges[i]) : String(i)));
      const key = `${rep.model}/${f.name}`;
      driftCharts.get(key)?.destroy();
      driftCharts.set(key, new Chart(canvas, {
        type: 'bar',
        data: { labels, datasets: [
          { label: 'reference', data: hist.reference, borderWidth: 1 },
          { label: 'current', data: hist.current, borderWidth: 1, borderDash: [4, 2] },
        ] },
        options: { animation: false, maintainAspectRatio: false },
      }));
    }
    return div;
  }

  async function tick() {
    try {
      const [status, models, drift] = await Promise.all([get('/v1/status'), get('/v1/models').catch(() => undefined), get('/v1/drift').catch(() => undefined)]);
      $('device').textContent = status.deviceId;
      document.title = `${status.deviceId} - edge-agent`;
      const ready = await fetch('/readyz').then((r) => r.json()).catch(() => ({ ready: false, reasons: ['unreachable'] }));
      $('summary').replaceChildren(
        stateLabel(ready.ready ? 'ready' : 'not ready', ready.ready ? 'ok' : 'bad'),
        ready.reasons?.length ? ` (${ready.reasons.join('; ')})` : '',
        ready.warnings?.length ? ` warnings: ${ready.warnings.join('; ')}` : '',
      );
      facts($('agent'), [
        ['version', status.version], ['state', status.state], ['uptime', duration(status.uptimeSeconds)],
        ['CPU features', status.cpuFeatures], ['kernel variant', status.kernelVariant ?? status.runtime?.kernelVariant ?? '-'], ['node', status.node],
      ]);
      facts($('telemetry'), telemetryFacts(status.telemetry, status.fleet));
      renderRollouts(status.rollouts);
      renderModels(modelRows(models ?? status.runtime ?? status.models));
      renderDrift(drift);
    } catch (err) {
      $('summary').replaceChildren(stateLabel('unreachable: ' + err.message, 'bad'));
    }
  }

  tick();
  setInterval(tick, POLL_MS);
})();
