// Latch NVR web UI. No framework, no build step, no inline script (the
// Content-Security-Policy forbids it). Every state-changing call sends the
// session's CSRF token in the X-CSRF-Token header.
'use strict';
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  function csrf() {
    const m = $('meta[name="csrf-token"]');
    return m ? m.content : '';
  }

  // api calls the JSON API and always resolves: {status, ok, headers, data}.
  async function api(method, url, body) {
    const opts = { method: method, credentials: 'same-origin', headers: { 'Accept': 'application/json' } };
    if (method !== 'GET' && method !== 'HEAD') {
      opts.headers['X-CSRF-Token'] = csrf();
    }
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(url, opts);
    } catch (e) {
      return { status: 0, ok: false, headers: new Headers(), data: { message: 'The device did not answer: check the connection.' } };
    }
    let data = {};
    if ((res.headers.get('Content-Type') || '').startsWith('application/json')) {
      try { data = await res.json(); } catch (e) { data = {}; }
    }
    return { status: res.status, ok: res.ok, headers: res.headers, data: data || {} };
  }

  function errorText(r) {
    if (r.status === 401 && r.data.error === 'unauthenticated') {
      return 'Your session has ended: sign in again.';
    }
    return (r.data && (r.data.message || r.data.error)) || ('The device answered ' + r.status + '.');
  }

  function say(el, text, kind) {
    if (!el) { return; }
    el.textContent = text || '';
    el.classList.remove('ok', 'error');
    if (kind) { el.classList.add(kind); }
  }

  function pad2(n) { return String(n).padStart(2, '0'); }

  // fmt shows seconds as m:ss or h:mm:ss.
  function fmt(s) {
    s = Math.max(0, Math.floor(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return h > 0 ? h + ':' + pad2(m) + ':' + pad2(sec) : m + ':' + pad2(sec);
  }

  function formBody(form) {
    const body = {};
    for (const el of form.elements) {
      if (!el.name || el.name === 'csrf_token' || el.disabled || el.dataset.skip !== undefined) { continue; }
      if (el.type === 'checkbox') { body[el.name] = el.checked; continue; }
      if (el.value === '' && el.dataset.optional !== undefined) { continue; }
      body[el.name] = el.value;
    }
    return body;
  }

  // Forms with data-api post their fields as JSON.
  document.addEventListener('submit', async (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.api) { return; }
    ev.preventDefault();
    const out = $('.result', form);
    for (const el of $$('[data-same-as]', form)) {
      const other = form.elements.namedItem(el.dataset.sameAs);
      if (other && other.value !== el.value) { say(out, 'The two entries differ.', 'error'); return; }
    }
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { return; }
    const buttons = $$('button', form);
    buttons.forEach((b) => { b.disabled = true; });
    const r = await api(form.dataset.method || 'POST', form.dataset.api, formBody(form));
    buttons.forEach((b) => { b.disabled = false; });
    if (!r.ok) { say(out, errorText(r), 'error'); return; }
    if (form.dataset.redirect) { location.assign(form.dataset.redirect); return; }
    if (form.dataset.reload !== undefined) { location.reload(); return; }
    say(out, form.dataset.done || 'Done.', 'ok');
    form.reset();
  });

  // Buttons with data-action call the API, then reload the page.
  document.addEventListener('click', async (ev) => {
    const b = ev.target.closest('button[data-action]');
    if (!b) { return; }
    ev.preventDefault();
    if (b.dataset.confirm && !window.confirm(b.dataset.confirm)) { return; }
    let body;
    if (b.dataset.body) {
      try { body = JSON.parse(b.dataset.body); } catch (e) { return; }
    }
    b.disabled = true;
    const r = await api(b.dataset.method || 'POST', b.dataset.action, body);
    b.disabled = false;
    if (!r.ok) { say($('#action-result'), errorText(r), 'error'); return; }
    location.reload();
  });

  // Countdowns: elements with data-remaining (seconds) tick down.
  function startCountdowns() {
    const els = $$('[data-remaining]');
    if (els.length === 0) { return; }
    const start = Date.now();
    const tick = () => {
      const gone = (Date.now() - start) / 1000;
      for (const el of els) {
        const left = Number(el.dataset.remaining) - gone;
        el.textContent = left > 0 ? fmt(Math.ceil(left)) : 'ended';
      }
    };
    tick();
    setInterval(tick, 1000);
  }

  const pages = {};

  pages.login = function () {
    const form = $('#login-form');
    const msg = $('#login-message');
    const lock = $('#lock-message');
    const cd = $('#countdown');
    const btn = $('#login-button');
    const totpRow = $('#totp-row');
    let timer = null;

    function next() {
      const n = form.dataset.next || '/';
      return (n.startsWith('/') && !n.startsWith('//') && n.indexOf('\\') < 0) ? n : '/';
    }

    function lockFor(seconds, text) {
      clearInterval(timer);
      $('#lock-text').textContent = text;
      lock.hidden = false;
      btn.disabled = true;
      const end = Date.now() + seconds * 1000;
      const tick = () => {
        const left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
        cd.textContent = fmt(left);
        if (left <= 0) {
          clearInterval(timer);
          lock.hidden = true;
          btn.disabled = false;
          say(msg, 'You can try again now.', 'ok');
        }
      };
      tick();
      timer = setInterval(tick, 250);
    }

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      say(msg, '');
      const body = { username: form.elements.username.value, password: form.elements.password.value };
      if (!totpRow.hidden && form.elements.totp.value) { body.totp = form.elements.totp.value; }
      btn.disabled = true;
      const r = await api('POST', '/api/v1/login', body);
      btn.disabled = false;
      const d = r.data;
      if (r.ok) {
        location.assign(d.must_change_password ? '/account?must_change=1' : next());
        return;
      }
      if (r.status === 401 && d.error === 'totp_required') {
        totpRow.hidden = false;
        form.elements.totp.focus();
        say(msg, 'Enter the 6-digit code from your authenticator app.');
        return;
      }
      if (r.status === 401 && d.error === 'invalid_credentials') {
        let t = 'Wrong user name, password or code.';
        const n = d.remaining_attempts;
        if (typeof n === 'number' && n > 0) {
          t += ' ' + n + (n === 1 ? ' try' : ' tries') + ' left before sign-in from this device is locked.';
        } else if (n === 0) {
          t += ' Sign-in from this device is now locked for a while.';
        }
        say(msg, t, 'error');
        form.elements.password.value = '';
        form.elements.password.focus();
        return;
      }
      if (r.status === 429) {
        const secs = Number(r.headers.get('Retry-After')) || Number(d.retry_after_seconds) || 0;
        if (secs > 0) {
          lockFor(secs, d.message || 'Too many failed sign-ins.');
        } else {
          lock.hidden = true;
          say(msg, d.message || 'Sign-in is refused.', 'error');
        }
        return;
      }
      say(msg, errorText(r), 'error');
    });
  };

  pages.dashboard = function () {
    // Live streams start after the page has loaded, so loading never waits
    // on a stream that does not end.
    const start = () => {
      for (const img of $$('img[data-live-src]')) { img.src = img.dataset.liveSrc; }
    };
    if (document.readyState === 'complete') { start(); } else { window.addEventListener('load', start); }
  };

  pages.recordings = function () {
    const cam = $('#rec-camera');
    const day = $('#rec-day');
    const tl = $('#timeline');
    const tbody = $('#segments tbody');
    const player = $('#player');
    const now = $('#now-playing');
    if (!day.value) { day.value = $('#rec-controls').dataset.today; }

    function play(seg) {
      player.hidden = false;
      player.src = seg.play_url;
      now.textContent = 'Playing ' + seg.camera + ' from ' + seg.start.replace('T', ' ').replace('Z', ' UTC');
    }

    async function load() {
      for (const el of $$('.seg', tl)) { el.remove(); }
      tbody.replaceChildren();
      if (!cam.value || !day.value) { return; }
      const from = new Date(day.value + 'T00:00:00Z');
      const to = new Date(from.getTime() + 86400000);
      const r = await api('GET', '/api/v1/recordings?camera=' + encodeURIComponent(cam.value) +
        '&from=' + encodeURIComponent(from.toISOString()) + '&to=' + encodeURIComponent(to.toISOString()));
      if (!r.ok) { say(now, errorText(r), 'error'); return; }
      const segs = r.data.segments || [];
      if (segs.length === 0) { now.textContent = 'No footage on this day.'; }
      for (const seg of segs) {
        const s = Math.max(0, (new Date(seg.start) - from) / 86400000);
        const e = Math.min(1, (new Date(seg.end) - from) / 86400000);
        const block = document.createElement('button');
        block.type = 'button';
        block.className = 'seg';
        block.title = seg.start;
        block.style.left = (s * 100) + '%';
        block.style.width = Math.max(0.15, (e - s) * 100) + '%';
        block.addEventListener('click', () => play(seg));
        tl.appendChild(block);

        const tr = document.createElement('tr');
        const cell = (text) => { const td = document.createElement('td'); td.textContent = text; tr.appendChild(td); return td; };
        cell(seg.start.replace('T', ' ').replace('Z', ' UTC'));
        cell(fmt(seg.duration_seconds));
        cell(String(seg.frames));
        cell(seg.bytes >= 1048576 ? (seg.bytes / 1048576).toFixed(1) + ' MiB' : Math.ceil(seg.bytes / 1024) + ' KiB');
        const actions = cell('');
        const pb = document.createElement('button');
        pb.type = 'button';
        pb.textContent = 'Play';
        pb.addEventListener('click', () => play(seg));
        const dl = document.createElement('a');
        dl.href = seg.download_url;
        dl.textContent = 'Download';
        dl.setAttribute('download', '');
        actions.append(pb, ' ', dl);
        tbody.appendChild(tr);
      }
    }
    $('#rec-load').addEventListener('click', load);
    cam.addEventListener('change', load);
    load();
  };

  pages.users = function () {
    // Role changes.
    for (const sel of $$('select[data-patch]')) {
      sel.addEventListener('change', async () => {
        const r = await api('PATCH', sel.dataset.patch, { role: sel.value });
        if (!r.ok) { say($('#action-result'), errorText(r), 'error'); return; }
        location.reload();
      });
    }
    // Sessions: fetched on demand, shown under the user's row.
    for (const b of $$('button[data-sessions]')) {
      b.addEventListener('click', async () => {
        const row = b.closest('tr').nextElementSibling;
        if (!row.hidden) { row.hidden = true; return; }
        const r = await api('GET', b.dataset.sessions);
        if (!r.ok) { say($('#action-result'), errorText(r), 'error'); return; }
        const td = row.firstElementChild;
        td.replaceChildren();
        const live = (r.data.sessions || []).filter((s) => s.active);
        if (live.length === 0) {
          td.textContent = 'No active sessions.';
        } else {
          const ul = document.createElement('ul');
          for (const s of live) {
            const li = document.createElement('li');
            li.textContent = 'since ' + s.created_at + ' from ' + s.peer + ' ';
            if (!s.current) {
              const rb = document.createElement('button');
              rb.type = 'button';
              rb.textContent = 'Sign out';
              rb.dataset.action = b.dataset.sessions + '/' + encodeURIComponent(s.id);
              rb.dataset.method = 'DELETE';
              li.appendChild(rb);
            } else {
              li.append('(this session)');
            }
            ul.appendChild(li);
          }
          const all = document.createElement('button');
          all.type = 'button';
          all.textContent = 'Sign out everywhere';
          all.dataset.action = b.dataset.sessions;
          all.dataset.method = 'DELETE';
          td.append(ul, all);
        }
        row.hidden = false;
      });
    }
  };

  pages.settings = function () {
    const ta = $('#policy-yaml');
    const out = $('#policy-result');
    const accept = $('#accept-failed');

    function problems(d) {
      const lines = [d.message || 'Invalid policy.'];
      for (const p of d.problems || []) {
        lines.push((p.line ? 'line ' + p.line + ', column ' + p.column + ': ' : '') + (p.field ? p.field + ': ' : '') + p.reason);
      }
      return lines.join('\n');
    }

    async function run(kind) {
      say(out, kind === 'prove' ? 'Proving… this can take a while.' : kind === 'save' ? 'Validating and proving…' : 'Validating…');
      const body = { yaml: ta.value };
      let r;
      if (kind === 'validate') {
        r = await api('POST', '/api/v1/policy/validate', body);
      } else if (kind === 'prove') {
        r = await api('POST', '/api/v1/policy/prove', body);
      } else {
        if (accept.checked) { body.accept_failed_proof = true; }
        r = await api('PUT', '/api/v1/policy', body);
      }
      const d = r.data;
      if (r.status === 400 && d.error === 'invalid_policy') { say(out, problems(d), 'error'); return; }
      if (r.status === 409 && d.error === 'proof_failed') {
        say(out, 'Not saved: a property does not hold.\n\n' + d.summary + '\n\nTick “save even if a property fails” to save it anyway.', 'error');
        return;
      }
      if (!r.ok) { say(out, errorText(r), 'error'); return; }
      if (kind === 'validate') {
        say(out, 'Valid.' + (d.warnings && d.warnings.length ? '\nWarning: ' + d.warnings.join('\nWarning: ') : ''), 'ok');
      } else if (kind === 'prove') {
        say(out, (d.holds ? 'Every property holds.' : 'A property does not hold.') + '\n\n' + d.summary, d.holds ? 'ok' : 'error');
      } else {
        say(out, 'Saved.\n\n' + d.proof.summary, 'ok');
        setTimeout(() => location.reload(), 1500);
      }
    }
    $('#policy-validate').addEventListener('click', () => run('validate'));
    $('#policy-prove').addEventListener('click', () => run('prove'));
    $('#policy-save').addEventListener('click', () => run('save'));
  };

  pages.account = function () {
    const start = $('#totp-start');
    if (!start) { return; }
    start.addEventListener('click', async () => {
      const r = await api('POST', '/api/v1/me/totp');
      if (!r.ok) { say($('#action-result'), errorText(r), 'error'); return; }
      $('#totp-qr').src = r.data.qr_png;
      $('#totp-secret').textContent = r.data.secret;
      $('#totp-enrol').hidden = false;
      start.hidden = true;
    });
    // Confirming shows the recovery codes once, before the page reloads.
    const confirm = $('#totp-confirm');
    confirm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const r = await api('POST', '/api/v1/me/totp/confirm', { code: confirm.elements.code.value });
      if (!r.ok) { say($('.result', confirm), errorText(r), 'error'); return; }
      const list = $('#totp-code-list');
      list.replaceChildren();
      for (const c of r.data.recovery_codes || []) {
        const li = document.createElement('li');
        li.textContent = c;
        list.appendChild(li);
      }
      $('#totp-enrol').hidden = true;
      $('#totp-codes').hidden = false;
    });
    $('#totp-codes-done').addEventListener('click', () => location.reload());
  };

  pages.recover = function () {
    const start = $('#recover-start');
    const out = $('#recover-start-result');
    const send = $('#recover-send');
    const finishUser = $('#recover-finish-username');
    start.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const name = start.elements.username.value;
      send.disabled = true;
      const r = await api('POST', '/api/v1/recovery/start', { username: name });
      send.disabled = false;
      if (!r.ok) { say(out, errorText(r), 'error'); return; }
      say(out, r.data.message, 'ok');
      if (!finishUser.value) { finishUser.value = name; }
      $('#recover-code').focus();
    });
  };

  const init = pages[document.body.dataset.page];
  if (init) { init(); }
  startCountdowns();
  // Every handler is bound: tests (and impatient clicks) wait for this.
  document.body.dataset.ready = '1';
})();
