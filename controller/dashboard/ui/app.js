// The fleet dashboard: live views pushed over server-sent events (/api/events), the same JSON
// that `edge-fleet ... --json` prints. No build step; Chart.js is served from its npm package.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  let data = { devices: [], drift: [], rollouts: [], telemetry: { minutes: [], streams: {} } };
  let sortKey = 'deviceId';
  let sortDir = 1;
  let selected = null;
  let volumeChart;
  const driftCharts = new Map();

  function label(text, level) {
    const s = document.createElement('span');
    s.className = 'state ' + level;
    s.textContent = text;
    return s;
  }
  // A drift verdict as the controller decided it (agent/drift/verdict.ts, the same function as the
  // device page and `edge-fleet drift`): printed as given, with its reason when there is no verdict.
  const verdictLabel = (v) => {
    const s = label(v && v.verdict ? v.verdict : 'none', v && v.level ? v.level : 'muted');
    if (v && v.reason) s.title = v.reason;
    return s;
  };
  // The same words as `edge-fleet devices` (controller/deploy-problems.ts problemsText).
  const problemsText = (problems) => problems.map((p) => `${p.model}@${p.version} ${p.state}: ${p.reason}`).join('; ');
  const verdictWords = (v) => (v && v.reason && !v.scores ? `${v.verdict} (${v.reason})` : v ? v.verdict : 'none');
  const ago = (iso) => {
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    return s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
  };

  function renderDevices() {
    const q = $('filter').value.trim().toLowerCase();
    const rows = data.devices
      .filter((d) => !q || JSON.stringify([d.deviceId, d.state, d.models, d.drift.verdict, d.groups, d.problems]).toLowerCase().includes(q))
      .sort((a, b) => {
        const key = (d) => (sortKey === 'models' ? JSON.stringify(d.models) : sortKey === 'drift' ? d.drift.verdict : sortKey === 'problems' ? d.problems.length : d[sortKey]);
        const va = key(a);
        const vb = key(b);
        return (va > vb ? 1 : va < vb ? -1 : 0) * sortDir;
      });
    const body = $('devices').tBodies[0];
    body.replaceChildren();
    for (const d of rows) {
      const tr = body.insertRow();
      tr.className = 'selectable' + (d.deviceId === selected ? ' selected' : '');
      tr.dataset.device = d.deviceId;
      tr.tabIndex = 0;
      tr.insertCell().textContent = d.deviceId;
      tr.insertCell().append(label(d.online ? 'online' : d.state, d.online ? 'ok' : 'bad'));
      tr.insertCell().textContent = d.models.map((m) => `${m.name}@${m.version}`).join(', ') || '-';
      tr.insertCell().textContent = d.agentVersion || '-';
      tr.insertCell().textContent = ago(d.lastSeen);
      tr.insertCell().append(verdictLabel(d.drift));
      tr.insertCell().append(d.problems.length ? label(problemsText(d.problems), 'bad') : label('none failed', 'ok'));
      const open = () => selectDevice(d.deviceId);
      tr.addEventListener('click', open);
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
    }
    const online = data.devices.filter((d) => d.online).length;
    const failing = data.devices.filter((d) => d.problems.length).length;
    $('summary').replaceChildren(`${data.devices.length} devices: `, label(`${online} online`, 'ok'), ' ',
      label(`${data.devices.length - online} offline`, data.devices.length - online ? 'bad' : 'ok'),
      ...(failing ? [' ', label(`${failing} with a failed deploy`, 'bad')] : []));
  }

  async function selectDevice(id) {
    selected = id;
    renderDevices();
    const res = await fetch('/api/devices/' + encodeURIComponent(id));
    if (!res.ok) return;
    const d = await res.json();
    $('device-panel').hidden = false;
    $('h-device').textContent = 'Device ' + d.deviceId;
    const el = $('device');
    el.replaceChildren();
    const dl = document.createElement('dl');
    dl.className = 'facts';
    const add = (k, v) => {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      if (v instanceof Node) dd.append(v); else dd.textContent = v == null ? '-' : String(v);
      dl.append(dt, dd);
    };
    add('state', label(d.online ? 'online' : d.state, d.online ? 'ok' : 'bad'));
    add('agent', d.agentVersion);
    add('kernels', d.kernelVariant);
    add('uptime', d.uptimeSeconds != null ? `${d.uptimeSeconds} s` : '-');
    add('groups', (d.groups || []).join(', ') || '-');
    add('models', (d.models || []).map((m) => `${m.name}@${m.version}`).join(', ') || '-');
    for (const p of d.problems || []) add(`deploy ${p.model}@${p.version}`, label(`${p.state.replace('_', ' ')}: ${p.reason}`, 'bad'));
    for (const t of d.telemetry || []) add(`telemetry ${t.stream}`, `${t.records} records, ${t.duplicates} duplicates`);
    for (const r of d.drift || []) {
      const v = document.createElement('span');
      v.append(verdictLabel(r.verdict), r.verdict && r.verdict.reason ? ` ${r.verdict.reason}` : '');
      add(`drift ${r.model}@${r.version}`, v);
    }
    el.append(dl);
  }

  function renderRollouts() {
    const el = $('rollouts');
    if (!data.rollouts.length) return;
    el.replaceChildren();
    for (const r of data.rollouts) {
      const h = document.createElement('h3');
      const level = r.state === 'completed' ? 'ok' : r.state === 'halted' ? 'bad' : 'warn';
      h.append(`${r.model}@${r.version} to ${r.group}: `, label(r.state === 'running' ? `running, stage ${r.stage} of ${r.stages.length}` : r.state, level));
      el.append(h);
      if (r.reason) {
        const p = document.createElement('p');
        p.textContent = r.reason;
        el.append(p);
      }
      r.stages.forEach((s, i) => {
        const div = document.createElement('div');
        div.className = 'stage' + (s.current ? ' current' : '');
        const counts = {};
        for (const d of s.devices) counts[d.state] = (counts[d.state] || 0) + 1;
        div.textContent = `stage ${i + 1} (${s.percent}%)${s.current ? ' [current]' : ''}: ` +
          (s.devices.length ? Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', ') : 'not started');
        el.append(div);
      });
    }
  }

  function renderDrift() {
    const el = $('drift');
    if (!data.drift.length || typeof Chart === 'undefined') return;
    const keep = new Set();
    for (const v of data.drift) {
      const key = `${v.model}@${v.version}`;
      keep.add(key);
      let box = el.querySelector(`[data-key="${CSS.escape(key)}"]`);
      if (!box) {
        if (!driftCharts.size) el.replaceChildren();
        box = document.createElement('div');
        box.dataset.key = key;
        box.innerHTML = '<h3></h3><p class="devices"></p><div class="chart"><canvas role="img"></canvas></div>';
        el.append(box);
      }
      box.querySelector('h3').replaceChildren(`${key} `, verdictLabel(v.verdict));
      box.querySelector('.devices').textContent = `${v.devices.length} device(s) reporting; ` +
        v.devices.map((d) => `${d.deviceId}: ${verdictWords(d.verdict)}`).join(', ');
      const canvas = box.querySelector('canvas');
      canvas.setAttribute('aria-label', `${key}: drift score per feature, highest and mean over devices`);
      const labels = v.features.map((f) => f.name);
      const sets = [
        { label: 'highest score', data: v.features.map((f) => f.maxScore), borderWidth: 1 },
        { label: 'mean score', data: v.features.map((f) => f.meanScore), borderWidth: 1, borderDash: [4, 2] },
      ];
      const chart = driftCharts.get(key);
      if (chart) {
        chart.data.labels = labels;
        chart.data.datasets.forEach((d, i) => (d.data = sets[i].data));
        chart.update();
      } else {
        driftCharts.set(key, new Chart(canvas, {
          type: 'bar',
          data: { labels, datasets: sets },
          options: { animation: false, maintainAspectRatio: false, indexAxis: 'y',
            scales: { x: { title: { display: true, text: 'score (1 = at the threshold)' }, beginAtZero: true } } },
        }));
      }
    }
  }

  function renderVolume() {
    if (typeof Chart === 'undefined') return;
    const t = data.telemetry;
    const datasets = Object.entries(t.streams).map(([stream, counts], i) => ({
      label: stream, data: counts, borderWidth: 2, pointRadius: 0, borderDash: i % 2 ? [5, 3] : [],
    }));
    if (!volumeChart) {
      volumeChart = new Chart($('volume'), {
        type: 'line', data: { labels: t.minutes, datasets },
        options: { animation: false, maintainAspectRatio: false, scales: { y: { beginAtZero: true, title: { display: true, text: 'records' } } } },
      });
    } else {
      volumeChart.data.labels = t.minutes;
      volumeChart.data.datasets = datasets;
      volumeChart.update();
    }
  }

  function render() {
    renderDevices();
    renderRollouts();
    renderDrift();
    renderVolume();
    if (selected) selectDevice(selected);
  }

  for (const b of document.querySelectorAll('th button')) {
    b.addEventListener('click', () => {
      sortDir = sortKey === b.dataset.sort ? -sortDir : 1;
      sortKey = b.dataset.sort;
      renderDevices();
    });
  }
  $('filter').addEventListener('input', renderDevices);

  // ?live=0: one snapshot and no event stream, so the page settles (headless screenshots).
  if (new URLSearchParams(location.search).get('live') === '0') {
    fetch('/api/snapshot').then((r) => r.json()).then((d) => { data = d; render(); })
      .catch((err) => $('summary').replaceChildren(label('cannot reach the controller: ' + err.message, 'bad')));
    return;
  }
  const events = new EventSource('/api/events');
  events.addEventListener('update', (e) => {
    data = JSON.parse(e.data);
    render();
  });
  events.onerror = () => $('summary').replaceChildren(label('reconnecting to the controller...', 'warn'));
})();
