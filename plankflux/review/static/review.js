// plankflux review: the page over one proposal folder. Plain JavaScript, no build step.
// Every decision goes to the server, which saves it before answering; this page only
// shows what the server says, so a reload resumes exactly where it was.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const LABELS = { confirmed: "✓ confirmed", relabelled: "→ ", wrong: "✗ wrong", undecided: "? can't decide" };

let info = null;          // what /api/open said: classes, mode, page size, tab id ...
let progress = null;      // {classes: {name: {total, decided}}, total, decided}
let current = null;       // {class, items, references}
let page = 0;
let selected = 0;         // index within the page
let readOnly = false;
let lastAction = performance.now();
let zoomed = false;

function message(text, kind) {
  const box = $("message");
  box.textContent = text || "";
  box.className = text ? kind || "info" : "";
}

async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: { "X-Plankflux-Token": token, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify({ tab: info && info.tab, ...body }),
    });
  } catch (err) {
    message("The plankflux review server does not answer (was it stopped?). Your decisions so far are saved; start it again and reload.", "error");
    throw err;
  }
  const data = await response.json().catch(() => ({ error: `server answered ${response.status}` }));
  if (!response.ok) {
    if (data.other_tab) readOnly = true;
    message(data.error || `server answered ${response.status}`, "error");
    throw new Error(data.error);
  }
  if (data.progress) progress = data.progress;
  if ("can_undo" in data) $("undo").disabled = readOnly || !data.can_undo;
  if ("finished" in data) showFinished(data.finished);
  return data;
}

function secondsSinceLastAction() {
  const now = performance.now();
  const seconds = (now - lastAction) / 1000;
  lastAction = now;
  return seconds;
}

function pageItems() {
  const size = info.page_size;
  return current.items.slice(page * size, (page + 1) * size);
}

function pageCount() {
  return Math.max(1, Math.ceil(current.items.length / info.page_size));
}

function renderClasses() {
  const nav = $("classes");
  nav.innerHTML = "";
  for (const name of info.classes) {
    const count = progress.classes[name];
    const link = document.createElement("a");
    link.href = "#";
    link.dataset.cls = name;
    link.innerHTML = `<span></span><span class="count"></span>`;
    link.firstChild.textContent = name;
    link.lastChild.textContent = count ? `${count.decided}/${count.total}` : "–";
    if (!count) link.classList.add("empty");
    else if (count.decided === count.total) link.classList.add("done");
    if (current && current.class === name) link.classList.add("current");
    link.onclick = (event) => { event.preventDefault(); if (count) loadClass(name); };
    nav.appendChild(link);
  }
  const done = progress.decided, total = progress.total;
  $("overall-bar").style.width = total ? `${(100 * done) / total}%` : "0";
  $("overall-text").textContent = `${done} / ${total} decided`;
  $("finish").disabled = readOnly || done !== total;
}

function voteText(item) {
  if (!item.votes.length) return "";
  return item.votes.map(([member, label, score]) => {
    const dissent = label !== current.class ? " class=\"dissent\"" : "";
    const value = score === null ? "" : ` ${score.toFixed(2)}`;
    return `<span${dissent}>m${member}: ${escapeHtml(label)}${value}</span>`;
  }).join(" · ");
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }[c]));
}

function renderGrid() {
  const grid = $("grid");
  grid.innerHTML = "";
  const items = pageItems();
  selected = Math.min(selected, Math.max(0, items.length - 1));
  items.forEach((item, k) => {
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.dataset.pid = item.particle_id;
    const decision = item.decision;
    if (decision) tile.classList.add(decision.verdict);
    if (k === selected) tile.classList.add("selected");
    const src = `image/${item.index}?token=${encodeURIComponent(token)}`;
    const picture = item.missing
      ? `<div class="missing">image missing:<br>${escapeHtml(item.file)}</div>`
      : `<img class="zoom" src="${src}" alt="${escapeHtml(item.particle_id)}"><img class="real" src="${src}" alt="" title="real size">`;
    const verdict = decision
      ? (decision.verdict === "relabelled" ? `→ ${escapeHtml(decision.label)}` : LABELS[decision.verdict])
      : "";
    tile.innerHTML = `
      <div class="images">${picture}</div>
      <div class="pid">${escapeHtml(item.particle_id)}${item.vanished && !item.missing ? " (original image: the copy is gone)" : ""}</div>
      <div class="score">score ${item.score.toFixed(3)} · rank ${item.rank}</div>
      <div class="votes">${voteText(item)}</div>
      <span class="verdict">${verdict}</span>
      <div class="actions">
        <button data-do="confirmed" title="confirm (c)">✓</button>
        <button data-do="wrong" title="wrong (x)">✗</button>
        <button data-do="reassign" title="reassign (r)">→</button>
        <button data-do="undecided" title="can't decide (d)">?</button>
      </div>`;
    tile.onclick = (event) => {
      selected = k;
      const action = event.target.dataset && event.target.dataset.do;
      if (action === "reassign") openReassign();
      else if (action) decideSelected(action);
      else renderGrid();
    };
    const zoom = tile.querySelector("img.zoom");
    if (zoom) zoom.onerror = () => { zoom.replaceWith(Object.assign(document.createElement("div"), { className: "missing", textContent: `image missing: ${item.file}` })); };
    grid.appendChild(tile);
  });
  const count = progress.classes[current.class] || { decided: 0, total: 0 };
  $("class-name").textContent = current.class;
  $("class-progress").textContent = `${count.decided} / ${count.total} decided`;
  $("pager").textContent = `page ${page + 1} / ${pageCount()}`;
  renderClasses();
}

function renderReferences() {
  const box = $("references");
  box.innerHTML = "";
  for (const ref of current.references) {
    const img = document.createElement("img");
    img.src = `reference/${encodeURIComponent(current.class)}/${ref.n}?token=${encodeURIComponent(token)}`;
    img.title = ref.particle_id;
    img.alt = ref.particle_id;
    box.appendChild(img);
  }
  if (!current.references.length) box.textContent = "none in the campaign";
}

function firstUndecidedPage() {
  const k = current.items.findIndex((item) => !item.decision);
  return k < 0 ? 0 : Math.floor(k / info.page_size);
}

async function loadClass(name, pid) {
  current = await api("GET", `api/class/${encodeURIComponent(name)}`);
  const at = pid ? current.items.findIndex((item) => item.particle_id === pid) : -1;
  page = at >= 0 ? Math.floor(at / info.page_size) : firstUndecidedPage();
  selected = at >= 0 ? at % info.page_size : Math.max(0, pageItems().findIndex((item) => !item.decision));
  lastAction = performance.now();
  renderReferences();
  renderGrid();
}

function applyDecisions(decisions) {
  for (const item of current.items) {
    if (item.particle_id in decisions) item.decision = decisions[item.particle_id];
  }
}

async function decide(changes) {
  if (readOnly || !changes.length) return false;
  const data = await api("POST", "api/decide", { changes, seconds: secondsSinceLastAction() });
  applyDecisions(data.decisions);
  return true;
}

function nextUndecidedOnPage() {
  const items = pageItems();
  for (let step = 1; step <= items.length; step++) {
    const k = (selected + step) % items.length;
    if (!items[k].decision) return k;
  }
  return selected;
}

async function decideSelected(verdict, label) {
  const item = pageItems()[selected];
  if (!item) return;
  if (await decide([{ particle_id: item.particle_id, verdict, label: label || "" }])) {
    selected = nextUndecidedOnPage();
    renderGrid();
  }
}

async function acceptPage() {
  const changes = pageItems().filter((item) => !item.decision)
    .map((item) => ({ particle_id: item.particle_id, verdict: "confirmed", label: "" }));
  if (changes.length && !(await decide(changes))) return;
  if (page + 1 < pageCount()) { page += 1; selected = 0; renderGrid(); return; }
  const next = nextClassWithWork();
  if (next) await loadClass(next);
  else { renderGrid(); message("Every image has a decision: press f (Finish) to write verified.csv.", "info"); }
}

function nextClassWithWork(step = 1) {
  const names = info.classes.filter((name) => progress.classes[name]);
  const at = names.indexOf(current.class);
  for (let k = 1; k <= names.length; k++) {
    const name = names[(at + step * k + names.length * k) % names.length];
    const count = progress.classes[name];
    if (count.decided < count.total) return name;
  }
  return null;
}

function switchClass(step) {
  const names = info.classes.filter((name) => progress.classes[name]);
  const at = names.indexOf(current.class);
  loadClass(names[(at + step + names.length) % names.length]);
}

async function undo() {
  if (readOnly) return;
  const data = await api("POST", "api/undo", { seconds: secondsSinceLastAction() });
  if (!data.undone.length) { message("Nothing to undo.", "info"); return; }
  message(`Undone: ${data.undone.length === 1 ? data.undone[0] : data.undone.length + " images"}.`, "info");
  if (data.class !== current.class) { await loadClass(data.class, data.undone[0]); return; }
  applyDecisions(data.decisions);
  const at = current.items.findIndex((item) => item.particle_id === data.undone[0]);
  page = Math.floor(at / info.page_size);
  selected = at % info.page_size;
  renderGrid();
}

async function finish() {
  if (readOnly) return;
  if (progress.decided !== progress.total) {
    message(`${progress.total - progress.decided} image(s) have no decision yet.`, "error");
    return;
  }
  const data = await api("POST", "api/finish", {});
  const counts = Object.entries(data.counts).map(([k, v]) => `${k} ${v}`).join(", ");
  message(`Wrote ${data.out} (${counts}). Later changes keep it up to date. To go on, run your plankflux pipeline command again.`, "info");
}

function showFinished(finished) {
  if (finished && finished.stale) {
    message(`${finished.out} was written before the last changes: decide the rest and finish again.`, "error");
  }
}

// ------------------------------------------------------------------ reassign box
let choices = [];
let choice = 0;

function openReassign() {
  const item = pageItems()[selected];
  if (!item || readOnly) return;
  $("reassign-pid").textContent = item.particle_id;
  $("reassign").hidden = false;
  const input = $("reassign-input");
  input.value = "";
  filterChoices();
  input.focus();
}

function closeReassign() {
  $("reassign").hidden = true;
  $("reassign-input").blur();
}

function filterChoices() {
  const typed = $("reassign-input").value.trim().toLowerCase();
  const others = info.classes.filter((name) => name !== current.class);
  const starts = others.filter((name) => name.toLowerCase().startsWith(typed));
  const contains = others.filter((name) => !starts.includes(name) && name.toLowerCase().includes(typed));
  choices = [...starts, ...contains];
  choice = 0;
  renderChoices();
}

function renderChoices() {
  const list = $("reassign-list");
  list.innerHTML = "";
  choices.forEach((name, k) => {
    const li = document.createElement("li");
    li.textContent = name;
    if (k === choice) li.className = "active";
    li.onclick = () => { choice = k; pickChoice(); };
    list.appendChild(li);
  });
  if (!choices.length) list.innerHTML = "<li>no class matches</li>";
}

function pickChoice() {
  if (!choices.length) { message(`"${$("reassign-input").value}" is not a class.`, "error"); return; }
  const label = choices[choice];
  closeReassign();
  decideSelected("relabelled", label);
}

$("reassign-input").addEventListener("input", filterChoices);
$("reassign-input").addEventListener("keydown", (event) => {
  if (event.key === "ArrowDown") { choice = Math.min(choice + 1, choices.length - 1); renderChoices(); }
  else if (event.key === "ArrowUp") { choice = Math.max(choice - 1, 0); renderChoices(); }
  else if (event.key === "Enter") pickChoice();
  else if (event.key === "Escape") closeReassign();
  else return;
  event.preventDefault();
  event.stopPropagation();
});

// -------------------------------------------------------------------------- keys
function moveSelection(delta) {
  const items = pageItems();
  selected = Math.min(Math.max(selected + delta, 0), items.length - 1);
  renderGrid();
}

function columns() {
  const tiles = $("grid").children;
  if (tiles.length < 2) return 1;
  const top = tiles[0].offsetTop;
  let n = 0;
  while (n < tiles.length && tiles[n].offsetTop === top) n++;
  return n;
}

document.addEventListener("keydown", (event) => {
  if (!info || !current) return;
  if (!$("reassign").hidden) return;
  if (!$("help").hidden) { if (event.key === "Escape" || event.key === "?") $("help").hidden = true; event.preventDefault(); return; }
  if (event.altKey || event.metaKey) return;
  if (event.ctrlKey) { if (event.key === "z") { undo(); event.preventDefault(); } return; }
  const keys = {
    ArrowLeft: () => moveSelection(-1), h: () => moveSelection(-1),
    ArrowRight: () => moveSelection(1), l: () => moveSelection(1),
    ArrowUp: () => moveSelection(-columns()), k: () => moveSelection(-columns()),
    ArrowDown: () => moveSelection(columns()), j: () => moveSelection(columns()),
    Enter: acceptPage, a: acceptPage,
    c: () => decideSelected("confirmed"), " ": () => decideSelected("confirmed"),
    x: () => decideSelected("wrong"), Delete: () => decideSelected("wrong"),
    d: () => decideSelected("undecided"),
    r: openReassign,
    u: undo,
    n: () => { if (page + 1 < pageCount()) { page++; selected = 0; renderGrid(); } },
    PageDown: () => { if (page + 1 < pageCount()) { page++; selected = 0; renderGrid(); } },
    p: () => { if (page > 0) { page--; selected = 0; renderGrid(); } },
    PageUp: () => { if (page > 0) { page--; selected = 0; renderGrid(); } },
    "]": () => switchClass(1), "[": () => switchClass(-1),
    z: () => { zoomed = !zoomed; document.body.style.setProperty("--zoom", zoomed ? "224px" : "128px"); },
    f: finish,
    "?": () => { $("help").hidden = false; },
  };
  const action = keys[event.key];
  if (!action) return;
  event.preventDefault();
  Promise.resolve(action()).catch(() => {});
});

// A clicked button gives the focus back, so Enter and Space stay the page's keys.
document.addEventListener("click", (event) => {
  const button = event.target.closest && event.target.closest("button");
  if (button) button.blur();
});
$("undo").onclick = () => undo().catch(() => {});
$("finish").onclick = () => finish().catch(() => {});
$("accept").onclick = () => acceptPage().catch(() => {});
$("help-button").onclick = () => { $("help").hidden = !$("help").hidden; };

async function start() {
  if (!token) { message("Wrong or missing token. Open the address that `plankflux review` printed in its terminal (it ends with ?token=...).", "error"); return; }
  info = await api("POST", "api/open", {});
  $("folder").textContent = `${info.proposal_dir} · ${info.mode} round · writes ${info.out}`;
  if (info.vanished.length) {
    message(`${info.vanished.length} proposal image(s) are no longer in the folder (moved or deleted by hand?), e.g. ${info.vanished[0]}: the page shows the campaign's original where it can. Your decisions here, not the folder, make verified.csv.`, "error");
  }
  const names = info.classes.filter((name) => progress.classes[name]);
  if (!names.length) { message("This proposal folder proposes no image.", "info"); return; }
  const todo = names.find((name) => progress.classes[name].decided < progress.classes[name].total);
  await loadClass(todo || names[0]);
  document.body.dataset.ready = "true";
}

start().catch(() => {});
