// The fleet dashboard: live views pushed over server-sent events (/api/events), the same JSON
// that `edge-fleet ... --json` prints. No build step; Chart.js is served from its npm package.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  let data = { counts: null, drift: [], rollouts: [], telemetry: { minutes: [], streams: {} } };
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

  // The device table is one page from the controller (/api/device-page): it pages, filters
  // and sorts, so the page never holds the whole fleet. The query lives in the address bar.
  function renderDevices(page) {
    const body = $('devices').tBodies[0];
    body.replaceChildren();
    for (const d of page.rows) {
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
    const first = page.total ? page.offset + 1 : 0;
    const last = page.offset + page.rows.length;
    const pages = Math.max(1, Math.ceil(page.total / page.limit));
    const filtered = query.search || query.state || query.version;
    $('page-info').textContent = page.rows.length
      ? `${first}-${last} of ${page.total}${filtered ? ' matching' : ''} (page ${Math.floor(page.offset / page.limit) + 1} of ${pages})`
      : `no devices${filtered ? ' match' : ''}`;
    $('prev').disabled = page.offset === 0;
    $('next').disabled = page.offset + page.limit >= page.total;
    for (const b of document.querySelectorAll('th button')) {
      if (b.dataset.sort === query.sort) b.setAttribute('aria-sort', query.order === 'asc' ? 'ascending' : 'descending');
      else b.removeAttribute('aria-sort');
    }
    if (!performance.getEntriesByName('devices-rendered').length) performance.mark('devices-rendered');
  }

  const query = { offset: 0, limit: 50, search: '', state: '', version: '', sort: 'deviceId', order: 'asc' };
  const here = new URLSearchParams(location.search);
  for (const k of Object.keys(query)) {
    const v = here.get(k);
    if (v === null) continue;
    query[k] = typeof query[k] === 'number' ? Math.max(0, Math.floor(Number(v)) || 0) : v;
  }
  if (!query.limit) query.limit = 50;
  $('filter').value = query.search;

  function queryParams() {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== '') p.set(k, String(v));
    return p;
  }
  let pageSeq = 0;
  let loading = null;
  let again = false;
  function loadPage() {
    if (loading) { again = true; return loading; }
    const seq = ++pageSeq;
    loading = (async () => {
      try {
        const res = await fetch('/api/device-page?' + queryParams());
        const body = await res.json();
        if (seq !== pageSeq) return;
        if (!res.ok) {
          $('page-info').replaceChildren(label((body.error && body.error.message) || `HTTP ${res.status}`, 'bad'));
          return;
        }
        if (body.rows.length === 0 && body.offset > 0 && body.total > 0) {
          // Past the end (the fleet shrank, or a hand-made address): the last page instead.
          query.offset = Math.floor((body.total - 1) / body.limit) * body.limit;
          again = true;
          return;
        }
        renderDevices(body);
      } catch (err) {
        $('page-info').replaceChildren(label('cannot reach the controller: ' + err.message, 'bad'));
      } finally {
        loading = null;
        if (again) { again = false; loadPage(); }
      }
    })();
    return loading;
  }
  function setQuery(change) {
    Object.assign(query, { offset: 0 }, change);
    const p = queryParams();
    if (here.get('live') === '0') p.set('live', '0');
    history.replaceState(null, '', '?' + p);
    pageSeq++;
    loadPage();
  }

  function option(select, value, text) {
    let o = [...select.options].find((x) => x.value === value);
    if (!o) { o = document.createElement('option'); o.value = value; select.append(o); }
    o.textContent = text;
  }
  function chip(text, pressed, onclick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    b.setAttribute('aria-pressed', String(pressed));
    b.addEventListener('click', onclick);
    return b;
  }
  // Counts by state and by served model version; each is a filter (click again to clear it).
  function renderCounts() {
    const c = data.counts || { total: 0, byState: {}, byVersion: {} };
    const online = c.byState.online || 0;
    $('summary').replaceChildren(`${c.total} devices: `, label(`${online} online`, 'ok'), ' ',
      label(`${c.total - online} offline`, c.total - online ? 'bad' : 'ok'),
      ...(c.failedDeploys ? [' ', label(`${c.failedDeploys} with a failed deploy`, 'bad')] : []));
    const el = $('counts');
    const toggle = (id, value) => () => { $(id).value = query[id] === value ? '' : value; setQuery({ [id]: $(id).value }); renderCounts(); };
    const states = document.createElement('p');
    states.append('By state: ');
    for (const [s, n] of Object.entries(c.byState)) {
      states.append(chip(`${s}: ${n}`, query.state === s, toggle('state', s)));
      option($('state'), s, `${s} (${n})`);
    }
    const versions = document.createElement('p');
    versions.append('By version: ');
    if (!Object.keys(c.byVersion).length) versions.append('no model reported');
    for (const [v, n] of Object.entries(c.byVersion)) {
      versions.append(chip(`${v}: ${n}`, query.version === v, toggle('version', v)));
      option($('version'), v, `${v} (${n})`);
    }
    el.replaceChildren(states, versions);
    for (const id of ['state', 'version']) {
      const known = id === 'state' ? c.byState : c.byVersion;
      // A state or version no device has any more leaves the list (unless it is the filter).
      for (const o of [...$(id).options]) if (o.value && !(o.value in known) && o.value !== query[id]) o.remove();
      if (query[id] && !(query[id] in known)) option($(id), query[id], `${query[id]} (0)`);
      $(id).value = query[id];
    }
  }

  async function selectDevice(id) {
    selected = id;
    for (const tr of $('devices').tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.device === id);
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
      if (r.fieldSummary) {
        // The field-accuracy gate: candidate and baseline accuracy on labelled requests, the gain, the labels.
        const p = document.createElement('p');
        p.className = 'field';
        p.textContent = r.fieldSummary;
        el.append(p);
      }
      r.stages.forEach((s, i) => {
        const div = document.createElement('div');
        div.className = 'stage' + (s.current ? ' current' : '');
        // Counts by what the stage's devices report (the controller counts; no device lists).
        div.textContent = `stage ${i + 1} (${s.percent}%)${s.current ? ' [current]' : ''}: ` +
          (s.total ? Object.entries(s.counts).map(([k, v]) => `${v} ${k}`).join(', ') : 'not started');
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

  // Per model version: examples and labels that arrived, labels per class (/api/learning).
  let learningAt = 0;
  function renderLearning() {
    if (Date.now() - learningAt < 5000) return;
    learningAt = Date.now();
    fetch('/api/learning').then((r) => r.json()).then((rows) => {
      if (!Array.isArray(rows) || !rows.length) return;
      const table = document.createElement('table');
      table.id = 'learning-table';
      table.innerHTML = '<thead><tr><th>model</th><th>version</th><th>examples</th><th>labels</th><th>labels per class</th></tr></thead><tbody></tbody>';
      for (const r of rows) {
        const tr = document.createElement('tr');
        tr.dataset.model = `${r.model}@${r.version}`;
        const classes = Object.entries(r.perClass).sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }));
        for (const v of [r.model, r.version, r.examples, r.labels, classes.map(([k, n]) => `${k}: ${n}`).join(', ') || '-']) {
          const td = document.createElement('td');
          td.textContent = String(v);
          tr.append(td);
        }
        table.tBodies[0].append(tr);
      }
      $('learning').replaceChildren(table);
    }).catch(() => undefined);
  }

  let pageRequested = false;
  function render() {
    renderLearning();
    renderCounts();
    // The first snapshot needs no second request for the table: it was asked for at once.
    if (pageRequested) loadPage();
    pageRequested = true;
    renderRollouts();
    renderDrift();
    renderVolume();
    if (selected) selectDevice(selected);
  }

  for (const b of document.querySelectorAll('th button')) {
    b.addEventListener('click', () => {
      const same = query.sort === b.dataset.sort;
      setQuery({ sort: b.dataset.sort, order: same && query.order === 'asc' ? 'desc' : 'asc' });
    });
  }
  let typing;
  $('filter').addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => setQuery({ search: $('filter').value.trim() }), 200);
  });
  $('state').addEventListener('change', () => { setQuery({ state: $('state').value }); renderCounts(); });
  $('version').addEventListener('change', () => { setQuery({ version: $('version').value }); renderCounts(); });
  $('prev').addEventListener('click', () => setQuery({ offset: Math.max(0, query.offset - query.limit) }));
  $('next').addEventListener('click', () => setQuery({ offset: query.offset + query.limit }));

  // The table's page is asked for at once, in parallel with the counts and the charts; Chart.js
  // loads after this script, and the charts are drawn when it has.
  loadPage();
  window.addEventListener('load', () => { renderDrift(); renderVolume(); });

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
