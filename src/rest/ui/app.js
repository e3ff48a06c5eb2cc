// The gateway's browser page: browses and searches through the public REST
// API (docs/rest.md) only. Every name from the server is put in the page as
// text (textContent), never parsed as HTML. Where the page is lives in the
// URL's fragment (#/files?path=... or #/search?...), so back, forward and a
// shared link work, and the server sees no page parameters.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const KEY_STORAGE = 'filemesh.apiKey';
  const PAGE_SIZE = 100;
  const POLL_MS = 1000;
  const OPERATION_PATH = /^\/api\/v1\/operations\/[0-9a-f]{32}$/;
  const TYPE_NAMES = {
    FILE_TYPE_FILE: 'file',
    FILE_TYPE_DIRECTORY: 'directory',
    FILE_TYPE_SYMLINK: 'symlink',
    FILE_TYPE_OTHER: 'other',
  };
  const TRUNCATION = {
    TRUNCATION_REASON_MAX_RESULTS: 'it reached the most results asked for',
    TRUNCATION_REASON_DEADLINE: 'it reached its deadline',
    TRUNCATION_REASON_MAX_BYTES: 'the answer reached its size limit',
  };

  // ---------------------------------------------------------------- bytes
  const encoder = new TextEncoder();

  function base64ToBytes(text) {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  // The exact bytes of an entry's path (docs/names.md: raw_path when set).
  function exactPath(entry) {
    return entry.raw_path ? base64ToBytes(entry.raw_path) : encoder.encode(entry.path);
  }

  // Length of the well-formed UTF-8 sequence starting at bytes[i], or 0.
  function utf8Length(bytes, i) {
    const c = bytes[i];
    if (c < 0x80) return 1;
    let n = 0;
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) n = 3;
    else if (c >= 0xf0 && c <= 0xf4) n = 4;
    else return 0;
    if (i + n > bytes.length) return 0;
    for (let k = 1; k < n; k++) {
      if ((bytes[i + k] & 0xc0) !== 0x80) return 0;
    }
    const c1 = bytes[i + 1];
    if (c === 0xe0 && c1 < 0xa0) return 0; // overlong
    if (c === 0xed && c1 >= 0xa0) return 0; // UTF-16 surrogate
    if (c === 0xf0 && c1 < 0x90) return 0; // overlong
    if (c === 0xf4 && c1 >= 0x90) return 0; // above U+10FFFF
    return n;
  }

  // The display form of docs/names.md: well-formed UTF-8 as it is, any other
  // byte as the four characters \xHH.
  function displayForm(bytes) {
    const decoder = new TextDecoder();
    let out = '';
    let i = 0;
    while (i < bytes.length) {
      if (utf8Length(bytes, i) === 0) {
        out += '\\x' + bytes[i].toString(16).padStart(2, '0');
        i++;
        continue;
      }
      let j = i;
      for (let n = utf8Length(bytes, j); n > 0 && j < bytes.length; n = utf8Length(bytes, j)) {
        j += n;
      }
      out += decoder.decode(bytes.subarray(i, j));
      i = j;
    }
    return out;
  }

  // Any bytes, percent-encoded for a query or fragment value.
  function percentEncode(bytes) {
    let out = '';
    for (const b of bytes) {
      const c = String.fromCharCode(b);
      out += /[A-Za-z0-9\-._~/]/.test(c) ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0');
    }
    return out;
  }

  // The bytes a percent-encoded value stands for (other characters as UTF-8).
  function percentDecode(text) {
    const out = [];
    for (let i = 0; i < text.length; i++) {
      if (text[i] === '%' && /^[0-9A-Fa-f]{2}$/.test(text.substr(i + 1, 2))) {
        out.push(parseInt(text.substr(i + 1, 2), 16));
        i += 2;
      } else {
        const code = text.codePointAt(i);
        const char = String.fromCodePoint(code);
        out.push(...encoder.encode(char));
        i += char.length - 1;
      }
    }
    return new Uint8Array(out);
  }

  function splitPath(bytes) {
    const parts = [];
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i === bytes.length || bytes[i] === 0x2f) {
        if (i > start) parts.push(bytes.subarray(start, i));
        start = i + 1;
      }
    }
    return parts;
  }

  function joinPath(parts) {
    const out = [];
    parts.forEach((part, index) => {
      if (index > 0) out.push(0x2f);
      out.push(...part);
    });
    return new Uint8Array(out);
  }

  function parentOf(bytes) {
    return joinPath(splitPath(bytes).slice(0, -1));
  }

  // ---------------------------------------------------------------- state
  // The fragment's parameters stay percent-encoded until read, so a path's
  // bytes survive whatever they are.
  function readState() {
    const hash = location.hash.replace(/^#/, '');
    const mark = hash.indexOf('?');
    const route = mark >= 0 ? hash.slice(0, mark) : hash;
    const raw = new Map();
    for (const part of (mark >= 0 ? hash.slice(mark + 1) : '').split('&')) {
      if (!part) continue;
      const eq = part.indexOf('=');
      raw.set(eq >= 0 ? part.slice(0, eq) : part, eq >= 0 ? part.slice(eq + 1) : '');
    }
    const text = (name, fallback) => {
      if (!raw.has(name)) return fallback;
      try {
        return decodeURIComponent(raw.get(name));
      } catch (e) {
        return fallback;
      }
    };
    const state = {
      view: route === '/search' ? 'search' : 'files',
      path: percentDecode(raw.get('path') || ''),
      hidden: text('hidden', '') === '1',
    };
    if (state.view === 'files') {
      state.sort = ['name', 'size', 'modified'].includes(text('sort')) ? text('sort') : 'name';
      state.order = text('order') === 'desc' ? 'desc' : 'asc';
      state.token = text('page_token', '');
      state.page = Math.max(1, parseInt(text('page', '1'), 10) || 1);
    } else {
      state.q = text('q', '');
      state.syntax = ['glob', 'substring', 'regex'].includes(text('syntax')) ? text('syntax') : 'glob';
      state.caseInsensitive = text('ci', '') === '1';
      state.type = ['file', 'directory', 'symlink', 'other'].includes(text('type'))
        ? text('type') : '';
      state.depth = /^[0-9]+$/.test(text('depth', '')) ? text('depth') : '';
      state.max = /^[0-9]+$/.test(text('max', '')) ? text('max') : '';
    }
    return state;
  }

  function hashOf(state) {
    const parts = [];
    if (state.path && state.path.length) parts.push('path=' + percentEncode(state.path));
    const add = (name, value) => parts.push(name + '=' + encodeURIComponent(value));
    if (state.view === 'search') {
      add('q', state.q);
      if (state.syntax !== 'glob') add('syntax', state.syntax);
      if (state.caseInsensitive) add('ci', '1');
      if (state.type) add('type', state.type);
      if (state.depth) add('depth', state.depth);
      if (state.max) add('max', state.max);
    } else {
      if (state.sort && state.sort !== 'name') add('sort', state.sort);
      if (state.order === 'desc') add('order', 'desc');
      if (state.token) {
        add('page', String(state.page));
        add('page_token', state.token);
      }
    }
    if (state.hidden) add('hidden', '1');
    return '#/' + state.view + (parts.length ? '?' + parts.join('&') : '');
  }

  function filesState(path, hidden) {
    return { view: 'files', path, hidden, sort: 'name', order: 'asc', token: '', page: 1 };
  }

  function go(state) {
    const hash = hashOf(state);
    if (location.hash === hash) show();
    else location.hash = hash;
  }

  // ---------------------------------------------------------------- the API
  async function api(url) {
    const headers = { Accept: 'application/json' };
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (key) headers.Authorization = 'Bearer ' + key;
    const response = await fetch(url, { headers, cache: 'no-store' });
    const type = response.headers.get('Content-Type') || '';
    const body = type.includes('json') ? await response.json() : await response.text();
    return { status: response.status, body, headers: response.headers };
  }

  const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // One call; a 202 (queued on the broker) is followed through its operation
  // until it is done. Null when the page moved on meanwhile.
  async function call(url, generation) {
    let result = await api(url);
    if (result.status !== 202) return result;
    const operation = result.headers.get('Location') || (result.body && result.body.operation);
    if (!OPERATION_PATH.test(operation || '')) return result;
    setStatus('Queued, waiting: no service has answered yet; the broker holds the request.');
    $('status').dataset.queued = 'true';
    for (;;) {
      await delay(POLL_MS);
      if (generation !== currentGeneration) return null;
      result = await api(operation);
      if (result.status !== 200 || result.body.done) break;
    }
    delete $('status').dataset.queued;
    if (result.status !== 200) return result;
    if (result.body.error) {
      // A failed call (AIP-151: google.rpc.Status), shown as the problem a
      // call answered at once would have been: "NOT_FOUND" reads "Not found".
      const name = String(result.body.error.status || 'UNKNOWN').toLowerCase().replace(/_/g, ' ');
      const title = name.charAt(0).toUpperCase() + name.slice(1);
      return { status: 500, body: { title, detail: String(result.body.error.message || '') },
        headers: result.headers };
    }
    const body = Object.assign({}, result.body.response, { served_by: result.body.served_by });
    return { status: 200, body, headers: result.headers };
  }

  function filesUrl(state) {
    let url = '/api/v1/files?page_size=' + PAGE_SIZE + '&path=' + percentEncode(state.path);
    if (state.sort !== 'name') url += '&sort=' + state.sort;
    if (state.order === 'desc') url += '&order=desc';
    if (state.hidden) url += '&hidden=true';
    if (state.token) url += '&page_token=' + encodeURIComponent(state.token);
    return url;
  }

  function searchUrl(state) {
    let url = '/api/v1/search?q=' + encodeURIComponent(state.q) + '&path=' + percentEncode(state.path);
    if (state.syntax !== 'glob') url += '&syntax=' + state.syntax;
    if (state.caseInsensitive) url += '&case_insensitive=true';
    if (state.type) url += '&type=' + state.type;
    if (state.depth) url += '&max_depth=' + state.depth;
    if (state.max) url += '&max_results=' + state.max;
    if (state.hidden) url += '&hidden=true';
    return url;
  }

  // ---------------------------------------------------------------- rendering
  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function setStatus(text) {
    $('status').textContent = text;
  }

  function showProblem(title, detail) {
    $('problem-title').textContent = title;
    $('problem-detail').textContent = detail;
    $('problem').hidden = false;
  }

  function clearProblem() {
    $('problem').hidden = true;
    $('problem-title').textContent = '';
    $('problem-detail').textContent = '';
  }

  function showServedBy(servedBy) {
    const node = $('served-by');
    node.dataset.servedBy = servedBy || '';
    node.textContent = servedBy ? 'served by ' + servedBy : '';
  }

  function humanSize(text) {
    const n = Number(text);
    if (!Number.isFinite(n)) return String(text);
    if (n < 1024) return n + ' B';
    const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
    let value = n / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit++;
    }
    return (value < 10 ? value.toFixed(1) : String(Math.round(value))) + ' ' + units[unit];
  }

  function localTime(rfc3339) {
    if (!rfc3339) return '';
    // Date reads at most milliseconds; the API prints up to nanoseconds.
    const date = new Date(rfc3339.replace(/(\.\d{3})\d+/, '$1'));
    return Number.isNaN(date.getTime()) ? rfc3339 : date.toLocaleString();
  }

  function link(text, state) {
    const a = el('a', text);
    a.href = hashOf(state);
    return a;
  }

  function renderCrumbs(state) {
    const nav = $('crumbs');
    nav.replaceChildren();
    const parts = splitPath(state.path);
    const root = link('root', filesState(new Uint8Array(0), state.hidden));
    nav.append(root);
    parts.forEach((part, index) => {
      nav.append(el('span', '/', 'sep'));
      const name = displayForm(part);
      if (index === parts.length - 1 && state.view === 'files') {
        const here = el('span', name, 'here');
        here.setAttribute('aria-current', 'page');
        nav.append(here);
      } else {
        nav.append(link(name, filesState(joinPath(parts.slice(0, index + 1)), state.hidden)));
      }
    });
    if (parts.length === 0 && state.view === 'files') root.setAttribute('aria-current', 'page');
  }

  function renderControls(state) {
    $('hidden').checked = state.hidden;
    if (state.view === 'search') {
      $('q').value = state.q;
      $('syntax').value = state.syntax;
      $('case-insensitive').checked = state.caseInsensitive;
      $('type').value = state.type;
      $('max-depth').value = state.depth;
      $('max-results').value = state.max;
    }
    for (const th of document.querySelectorAll('#listing th[data-field]')) {
      const field = th.dataset.field;
      const sorted = state.view === 'files' && state.sort === field;
      th.setAttribute('aria-sort', sorted ? (state.order === 'desc' ? 'descending' : 'ascending') : 'none');
    }
  }

  function typeName(entry) {
    return TYPE_NAMES[entry.type] || 'unknown';
  }

  // The name cell of an entry: a link into a directory, text for the rest.
  function nameCell(entry, label, hidden) {
    const td = el('td', null, 'name');
    if (entry.type === 'FILE_TYPE_DIRECTORY') {
      td.append(link(label + '/', filesState(exactPath(entry), hidden)));
    } else {
      td.append(el('span', label));
    }
    if (entry.type === 'FILE_TYPE_SYMLINK' && entry.symlink_target_redacted) {
      td.append(el('span', ' → (outside the root)', 'target'));
    } else if (entry.type === 'FILE_TYPE_SYMLINK' && entry.symlink_target) {
      td.append(el('span', ' → ' + entry.symlink_target, 'target'));
    }
    return td;
  }

  function entryCells(tr, entry) {
    tr.append(el('td', typeName(entry), 'type'));
    const size = el('td', entry.type === 'FILE_TYPE_DIRECTORY' ? '' : humanSize(entry.size), 'num');
    size.title = entry.size + ' bytes';
    tr.append(size);
    const modified = el('td', localTime(entry.modified), 'modified');
    if (entry.modified) modified.title = entry.modified;
    tr.append(modified);
  }

  const previousTokens = new Map(); // page token -> the token of the page before it

  function renderListing(state, body) {
    const tbody = document.querySelector('#listing tbody');
    tbody.replaceChildren();
    const entries = body.entries || [];
    for (const entry of entries) {
      const tr = document.createElement('tr');
      tr.dataset.name = entry.name;
      tr.dataset.type = typeName(entry);
      tr.append(nameCell(entry, entry.name, state.hidden));
      entryCells(tr, entry);
      tbody.append(tr);
    }
    if (entries.length === 0) {
      const td = el('td', 'This folder is empty.', 'empty');
      td.colSpan = 4;
      tbody.append(el('tr')).append(td);
    }
    const next = body.next_page_token || '';
    $('page-info').textContent = 'Page ' + state.page;
    $('first-page').disabled = !state.token;
    $('prev-page').disabled = !state.token || !previousTokens.has(state.token);
    $('next-page').disabled = !next;
    $('next-page').onclick = () => {
      previousTokens.set(next, state.token);
      go(Object.assign({}, state, { token: next, page: state.page + 1 }));
    };
    $('prev-page').onclick = () => {
      const token = previousTokens.get(state.token) || '';
      go(Object.assign({}, state, { token, page: token ? Math.max(1, state.page - 1) : 1 }));
    };
    $('first-page').onclick = () => go(Object.assign({}, state, { token: '', page: 1 }));
    $('listing-view').hidden = false;
  }

  function renderSearch(state, body) {
    const tbody = document.querySelector('#results tbody');
    tbody.replaceChildren();
    const matches = body.matches || [];
    for (const match of matches) {
      const tr = document.createElement('tr');
      tr.dataset.path = match.path;
      tr.dataset.type = typeName(match);
      const td = el('td', null, 'name');
      // A match links to the folder that holds it.
      const a = link(match.path, filesState(parentOf(exactPath(match)), state.hidden));
      a.title = 'Open the folder that holds it';
      td.append(a);
      tr.append(td);
      entryCells(tr, match);
      tbody.append(tr);
    }
    let summary = matches.length + (matches.length === 1 ? ' match' : ' matches') + ', ' +
      (body.scanned_entries || '0') + ' entries scanned';
    if (Number(body.skipped_directories || 0) > 0) {
      summary += ', ' + body.skipped_directories + ' folders could not be read';
    }
    const summaryNode = $('search-summary');
    summaryNode.replaceChildren(el('span', summary + '.'));
    summaryNode.dataset.truncated = body.truncated ? body.truncation_reason : '';
    if (body.truncated) {
      const why = TRUNCATION[body.truncation_reason] || body.truncation_reason;
      summaryNode.append(el('strong', ' Truncated: the search stopped because ' + why +
        ' (' + body.truncation_reason + ').', 'truncated'));
    }
    $('search-view').hidden = false;
  }

  let currentGeneration = 0;
  let loads = 0;

  // Marks the end of one load: what it came to, and a count a test (or a
  // script) can wait on.
  function finish(outcome) {
    document.body.dataset.state = outcome;
    document.body.dataset.loads = String(++loads);
  }

  async function show() {
    const generation = ++currentGeneration;
    const state = readState();
    renderCrumbs(state);
    renderControls(state);
    clearProblem();
    $('listing-view').hidden = true;
    $('search-view').hidden = true;
    document.body.dataset.view = state.view;
    document.body.dataset.state = 'loading';
    setStatus(state.view === 'search' ? 'Searching…' : 'Loading…');
    if (state.view === 'search' && !state.q) {
      setStatus('');
      showProblem('Bad Request', 'a search needs a pattern');
      finish('error');
      return;
    }
    let result;
    try {
      result = await call(state.view === 'search' ? searchUrl(state) : filesUrl(state), generation);
    } catch (e) {
      if (generation !== currentGeneration) return;
      setStatus('');
      showProblem('Network error', String((e && e.message) || e));
      finish('error');
      return;
    }
    if (result === null || generation !== currentGeneration) return;
    setStatus('');
    if (result.status === 401) {
      showKeyForm(result.body && result.body.detail);
      finish('key');
      return;
    }
    if (result.status !== 200) {
      const body = result.body && typeof result.body === 'object' ? result.body : {};
      showProblem(body.title || 'HTTP ' + result.status, body.detail || String(result.body || ''));
      showServedBy('');
      finish('error');
      return;
    }
    showServedBy(result.body.served_by);
    if (state.view === 'search') renderSearch(state, result.body);
    else renderListing(state, result.body);
    finish('ready');
  }

  function showKeyForm(why) {
    const form = $('key-form');
    $('key-why').textContent = sessionStorage.getItem(KEY_STORAGE)
      ? 'The API key was not accepted' + (why ? ' (' + why + ')' : '') + '. Enter it again.'
      : 'This gateway needs an API key.';
    form.hidden = false;
    $('api-key').focus();
  }

  // ---------------------------------------------------------------- events
  function onSearch(event) {
    event.preventDefault();
    const current = readState();
    go({
      view: 'search',
      path: current.path,
      hidden: $('hidden').checked,
      q: $('q').value,
      syntax: $('syntax').value,
      caseInsensitive: $('case-insensitive').checked,
      type: $('type').value,
      depth: $('max-depth').value.trim(),
      max: $('max-results').value.trim(),
    });
  }

  function onSort(event) {
    const field = event.currentTarget.dataset.sort;
    const state = readState();
    const base = state.view === 'files' ? state : filesState(state.path, state.hidden);
    const order = base.sort === field && base.order === 'asc' ? 'desc' : 'asc';
    go(Object.assign({}, base, { sort: field, order, token: '', page: 1 }));
  }

  function onHidden() {
    const state = readState();
    state.hidden = $('hidden').checked;
    if (state.view === 'files') {
      state.token = '';
      state.page = 1;
    }
    go(state);
  }

  function onKey(event) {
    event.preventDefault();
    const key = $('api-key').value;
    if (!key) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    $('api-key').value = '';
    $('key-form').hidden = true;
    show();
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('search-form').addEventListener('submit', onSearch);
    $('key-form').addEventListener('submit', onKey);
    $('hidden').addEventListener('change', onHidden);
    for (const button of document.querySelectorAll('#listing button[data-sort]')) {
      button.addEventListener('click', onSort);
    }
    window.addEventListener('hashchange', show);
    show();
  });

  // For tests of the page's logic (not used by the page itself).
  window.filemeshPage = { displayForm, percentEncode, percentDecode };
})();
