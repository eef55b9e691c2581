// The lamar viewer: plain JavaScript over the lamar-wasm bindings (no framework, no build step,
// so the page opens from disk). All computation (merging, scoring) runs in WebAssembly.
"use strict";

const CATEGORIES = ["", "Contact related", "Gathering additional information", "Defining problem",
  "Treatment goal", "Drug", "Therapeutic procedure related", "Evaluating test result", "Deferment",
  "Advice and precaution"];
const PARAMS = ["min_cluster_iou", "min_pairwise_iou", "min_cluster_support", "min_iou_same_cat"];
const BAR = 4; // pixels per span line

const TAGS = ["", "contact_related", "gather_info", "define_problem", "treatment_goal", "drug_decision",
  "therapeutic_procedure", "evaluate_result", "defer_decision", "advice_and_precaution"];

const state = { texts: {}, retrieval: [], rollouts: [], viewer: null, models: [], docs: [], current: null, merged: {}, modelScores: [], ensembleScores: null };
const $ = (id) => document.getElementById(id);

function message(text, kind) {
  const div = document.createElement("div");
  div.className = kind;
  div.textContent = text;
  $("messages").appendChild(div);
}

function errorText(e) { return (e && e.message) ? e.message : String(e); }

function settings() {
  const params = {};
  for (const p of PARAMS) params[p] = Number($(p).value);
  return { voter: $("voter").value, boundary: $("boundary").value, params };
}

// ---- loading ----------------------------------------------------------------------------

function addFile(name, text) {
  const v = state.viewer;
  try {
    if (name.endsWith(".txt")) { v.addRawText(name, text); state.texts[name.slice(0, -4)] = text; renderRetrieval(); return; }
    if (name.endsWith(".csv")) { v.setStats(name, text); return; }
    if (name.endsWith(".jsonl")) { addJsonLines(name, text); return; }
    if (!name.endsWith(".json")) { message(`${name}: ignored (expected .txt, .json, .csv or .jsonl)`, "warning"); return; }
    let parsed;
    try { parsed = JSON.parse(text); } catch (e) { throw new Error(`${name}: invalid JSON: ${errorText(e)}`); }
    const isPredictions = Array.isArray(parsed) && parsed.length > 0 && parsed[0] && "file_name" in parsed[0];
    if (isPredictions) v.addPredictions(name, text); else v.addGold(name, text);
  } catch (e) {
    message(errorText(e).startsWith(name) ? errorText(e) : `${name}: ${errorText(e)}`, "error");
  }
}

function loadPreloaded(data) {
  for (const [name, text] of Object.entries(data.rawTexts || {})) addFile(name, text);
  for (const g of data.gold || []) addFile(g.name, g.json);
  if (data.stats) addFile(data.stats.name, data.stats.csv);
  for (const p of data.predictions || []) addFile(p.name, p.json);
  for (const r of data.rollouts || []) addFile(r.name, r.jsonl);
  for (const n of data.notes || []) addFile(n.name, n.jsonl);
  for (const r of data.retrieval || []) addFile(r.name, r.jsonl);
}

async function readFiles(files) {
  // Raw texts and gold first, then stats, then predictions in name order (model index = order).
  const rank = (f) => f.name.endsWith(".txt") ? 0 : f.name.endsWith(".csv") ? 1 : 2;
  const list = Array.from(files).sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
  for (const f of list) addFile(f.name, await f.text());
  refresh(true);
}

function setupInputs() {
  $("file-input").addEventListener("change", (e) => readFiles(e.target.files));
  $("folder-input").addEventListener("change", (e) => readFiles(e.target.files));
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", async (e) => {
    e.preventDefault();
    const files = [];
    const walk = async (entry) => {
      if (entry.isFile) files.push(await new Promise((ok, fail) => entry.file(ok, fail)));
      else if (entry.isDirectory) {
        const reader = entry.createReader();
        let batch;
        do {
          batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
          for (const child of batch) await walk(child);
        } while (batch.length > 0);
      }
    };
    for (const item of e.dataTransfer.items) {
      const entry = item.webkitGetAsEntry && item.webkitGetAsEntry();
      if (entry) await walk(entry); else if (item.getAsFile()) files.push(item.getAsFile());
    }
    readFiles(files);
  });
  for (const p of PARAMS) {
    const input = $(p), out = document.querySelector(`output[for=${p}]`);
    out.textContent = Number(input.value).toFixed(2);
    input.addEventListener("input", () => { out.textContent = Number(input.value).toFixed(2); schedule(); });
  }
  $("voter").addEventListener("change", () => refresh(false));
  $("boundary").addEventListener("change", () => refresh(false));
  $("export").addEventListener("click", () => {
    try {
      const blob = new Blob([state.viewer.exportMerged(JSON.stringify(settings()))], { type: "application/json" });
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = "merged_predictions.json";
      a.click();
    } catch (e) { message(`export: ${errorText(e)}`, "error"); }
  });
}

let timer = null;
function schedule() { clearTimeout(timer); timer = setTimeout(() => refresh(false), 80); }

// ---- computing ----------------------------------------------------------------------------

function refresh(inputsChanged) {
  const v = state.viewer;
  $("status").textContent = "computing…";
  try {
    if (inputsChanged) {
      $("messages").querySelectorAll(".warning").forEach((w) => w.remove());
      for (const w of JSON.parse(v.warnings())) message(w, "warning");
      state.models = JSON.parse(v.models());
      state.docs = JSON.parse(v.documents());
      if (!state.docs.includes(state.current)) state.current = state.docs[0] || null;
    }
    const s = JSON.stringify(settings());
    state.merged = JSON.parse(v.merge(s));
    if (v.hasGold()) {
      const scores = JSON.parse(v.evaluate(s, inputsChanged || state.modelScores.length === 0));
      state.ensembleScores = scores.pop();
      if (scores.length > 0) state.modelScores = scores;
    } else {
      state.ensembleScores = null;
      state.modelScores = [];
    }
    renderDocList();
    renderMetrics();
    renderDocument();
    $("status").textContent = "ready";
  } catch (e) {
    message(errorText(e), "error");
    $("status").textContent = "error (see messages)";
  }
}

// ---- drawing ------------------------------------------------------------------------------

function renderDocList() {
  const list = $("doc-list");
  list.replaceChildren();
  const perDoc = state.ensembleScores ? state.ensembleScores.exact_f1_by_file : {};
  for (const id of state.docs) {
    const li = document.createElement("li");
    li.dataset.id = id;
    if (id === state.current) li.className = "current";
    const name = document.createElement("span");
    name.textContent = id;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = id in perDoc ? perDoc[id].toFixed(2) : "";
    score.title = "exact-span F1 of the merged result";
    li.append(name, score);
    li.addEventListener("click", () => { state.current = id; renderDocList(); renderDocument(); });
    list.appendChild(li);
  }
}

function metricCell(row, name, value) {
  const td = document.createElement("td");
  td.dataset.metric = name;
  if (value === undefined || value === null) td.textContent = "–";
  else { td.textContent = value.toFixed(4); td.dataset.value = String(value); }
  row.appendChild(td);
}

function renderMetrics() {
  const body = $("metrics").querySelector("tbody");
  body.replaceChildren();
  const systems = state.ensembleScores ? [...state.modelScores, state.ensembleScores] : [];
  for (const s of systems) {
    const tr = document.createElement("tr");
    tr.dataset.system = s.name;
    const th = document.createElement("td");
    th.textContent = s.name;
    tr.appendChild(th);
    const st = s.evaluation.shared_task;
    metricCell(tr, "span_f1", s.evaluation.span_f1.f1);
    metricCell(tr, "token_f1", s.evaluation.token_f1);
    metricCell(tr, "worst_group", st ? st.worst_group_score : null);
    metricCell(tr, "final", st ? st.final_score : null);
    body.appendChild(tr);
  }
  if (systems.length === 0) {
    const tr = document.createElement("tr");
    tr.innerHTML = "<td colspan=5>add gold JSON files to see scores</td>";
    body.appendChild(tr);
  }
}

// Spans of one lane get levels so that overlapping spans sit on separate lines.
function levels(spans) {
  const order = spans.map((s, i) => i).sort((a, b) => spans[a][0] - spans[b][0] || spans[b][1] - spans[a][1]);
  const ends = [], level = new Array(spans.length);
  for (const i of order) {
    let l = ends.findIndex((end) => end <= spans[i][0]);
    if (l < 0) { l = ends.length; ends.push(0); }
    ends[l] = spans[i][1];
    level[i] = l;
  }
  return { level, count: ends.length };
}

function renderDocument() {
  const id = state.current;
  const box = $("doc-text");
  box.replaceChildren();
  $("legend").replaceChildren();
  box.removeAttribute("data-focus");
  $("doc-title").textContent = id || "No document";
  if (!id) return;
  const doc = JSON.parse(state.viewer.document(id));
  if (doc.text === null) { box.textContent = `No raw text for ${id}: add ${id}.txt.`; return; }
  const chars = Array.from(doc.text); // code points, as the offsets count them
  const lanes = doc.models.map((spans, k) => ({ name: state.models[k], key: `model-${k}`, model: k, spans: spans || [] }));
  lanes.push({ name: `merged (${settings().voter})`, key: "merged", spans: (state.merged[id] || { spans: [] }).spans });
  if (doc.gold) lanes.push({ name: "gold", key: "gold", spans: doc.gold });
  let offset = 0;
  lanes.forEach((lane, k) => {
    lane.spans = lane.spans.filter((s) => s[1] <= chars.length);
    const l = levels(lane.spans);
    lane.level = l.level;
    lane.offset = offset;
    offset += Math.max(l.count, 1) + 1;
    // The lanes' lines sit under the text in this order; hovering a name shows its lines alone.
    const tag = document.createElement("span");
    tag.textContent = `${lane.name}: ${lane.spans.length}`;
    tag.dataset.lane = lane.key;
    tag.title = `${ordinal(k + 1)} group of lines under the text; hover to show only this one's spans`;
    tag.addEventListener("mouseenter", () => focusLane(lane.key));
    tag.addEventListener("mouseleave", () => focusLane(null));
    $("legend").appendChild(tag);
  });
  const height = offset * BAR;
  // Cut the text at every span boundary and at whitespace.
  const cuts = new Set([0, chars.length]);
  for (const lane of lanes) for (const s of lane.spans) { cuts.add(s[0]); cuts.add(s[1]); }
  for (let i = 0; i < chars.length; i++) if (/\s/.test(chars[i]) !== /\s/.test(chars[i + 1] || "x")) cuts.add(i + 1);
  const points = Array.from(cuts).sort((a, b) => a - b);
  const fragment = document.createDocumentFragment();
  for (let p = 0; p + 1 < points.length; p++) {
    const [a, b] = [points[p], points[p + 1]];
    const text = chars.slice(a, b).join("");
    if (/^\s+$/.test(text)) {
      const sp = document.createElement("span");
      sp.className = "space";
      sp.textContent = text;
      fragment.appendChild(sp);
      continue;
    }
    const piece = document.createElement("span");
    piece.className = "piece";
    piece.textContent = text;
    let bars = 0;
    for (const lane of lanes) {
      lane.spans.forEach((s, i) => {
        if (s[0] <= a && b <= s[1]) {
          const bar = document.createElement("span");
          bar.className = `bar cat-${s[2]}`;
          bar.style.bottom = `${height - (lane.offset + lane.level[i] + 1) * BAR}px`;
          bar.dataset.lane = lane.key;
          bar.dataset.span = `${s[0]}-${s[1]}-${s[2]}`;
          bar.title = `${lane.name}: ${CATEGORIES[s[2]]}`;
          bar.addEventListener("mouseenter", () => showDetails(id, lane, s, chars));
          piece.appendChild(bar);
          bars += 1;
        }
      });
    }
    // Only text under spans makes room for the span lines, so unmarked lines stay compact.
    if (bars > 0) piece.style.paddingBottom = `${height}px`;
    fragment.appendChild(piece);
  }
  box.appendChild(fragment);
}

function ordinal(n) { return n === 1 ? "1st" : n === 2 ? "2nd" : n === 3 ? "3rd" : `${n}th`; }

// Dims every span line but those of lane `key` (none with null).
function focusLane(key) {
  const box = $("doc-text");
  if (key === null) box.removeAttribute("data-focus"); else box.dataset.focus = key;
  for (const bar of box.querySelectorAll(".bar")) bar.classList.toggle("dim", key !== null && bar.dataset.lane !== key);
  for (const tag of $("legend").querySelectorAll("span")) tag.classList.toggle("focus", tag.dataset.lane === key);
}

// The nine categories' colours, once.
function categoryLegend() {
  const box = $("categories");
  box.replaceChildren();
  for (let c = 1; c < CATEGORIES.length; c++) {
    const item = document.createElement("span");
    item.dataset.category = String(c);
    const swatch = document.createElement("span");
    swatch.className = `swatch cat-${c}`;
    item.append(swatch, CATEGORIES[c]);
    box.appendChild(item);
  }
}

function showDetails(id, lane, span, chars) {
  const [start, end, category] = span;
  const lines = [`${lane.name}: ${CATEGORIES[category]} [${start}, ${end})`, `“${chars.slice(start, end).join("")}”`];
  const explanation = (state.merged[id] || {}).explanation;
  const cat = explanation && explanation.categories.find((c) => c.category === category);
  if (cat) {
    const cluster = cat.clusters.find((c) => lane.key === "merged"
      ? c.kept && c.boundary[0] === start && c.boundary[1] === end
      : c.members.some((m) => m.model === lane.model && m.start === start && m.end === end));
    lines.push("", "model weights: " + cat.weights.map((w) => `${state.models[w.model]} ${w.weight.toFixed(3)}`).join(", "));
    if (cluster) {
      lines.push(`cluster: ${cluster.members.length} member(s), support ${cluster.support.toFixed(3)}, ${cluster.kept ? "kept" : "dropped"}, boundary [${cluster.boundary[0]}, ${cluster.boundary[1]})`);
      for (const m of cluster.members) lines.push(`  ${state.models[m.model]}: [${m.start}, ${m.end})`);
    }
  }
  $("details").textContent = lines.join("\n");
}

// ---- JSON Lines: retrieval results, notes, GRPO rollouts ------------------------------------

// Which kind of .jsonl a file is, by the fields of its first record.
function addJsonLines(name, text) {
  const first = text.split("\n").find((l) => l.trim() !== "");
  let record = null;
  try { record = first ? JSON.parse(first) : null; } catch (e) { record = null; }
  if (record && "ref_file_id" in record) { addRetrieval(name, text); return; }
  if (record && "file_id" in record && ("raw_text" in record || "text" in record)) { addNotes(name, text); return; }
  addRollouts(name, text);
}

function addNotes(name, text) {
  text.split("\n").forEach((line, k) => {
    if (line.trim() === "") return;
    let row;
    try { row = JSON.parse(line); } catch (e) { throw new Error(`${name}: line ${k + 1}: invalid JSON: ${errorText(e)}`); }
    const body = row.raw_text ?? row.text;
    if (typeof row.file_id !== "string" || typeof body !== "string") {
      throw new Error(`${name}: line ${k + 1}: expected a "file_id" and a "text" or "raw_text" string`);
    }
    state.texts[row.file_id] = body;
  });
  renderRetrieval();
}

function addRetrieval(name, text) {
  const groups = JSON.parse(wasm_bindgen.retrievalGroups(text, name));
  state.retrieval.push(...groups);
  const picker = $("retrieval-query");
  for (const g of groups) {
    const option = document.createElement("option");
    option.value = String(picker.options.length);
    option.textContent = `${g.split} · ${g.query_file_id} (${g.notes.length} notes)`;
    picker.appendChild(option);
  }
  renderRetrieval();
}

function notePane(title, text) {
  const pane = document.createElement("div");
  pane.className = "note";
  const h = document.createElement("h3");
  h.textContent = title;
  const body = document.createElement("pre");
  body.textContent = text ?? "(text not loaded: add the notes file or the raw text)";
  if (text === undefined) body.className = "missing";
  pane.append(h, body);
  return pane;
}

function renderRetrieval() {
  const section = $("retrieval");
  section.hidden = state.retrieval.length === 0;
  if (section.hidden) return;
  const notes = state.retrieval.reduce((n, g) => n + g.notes.length, 0);
  $("retrieval-summary").textContent = `${state.retrieval.length} documents, ${notes} notes assigned.`;
  const g = state.retrieval[Number($("retrieval-query").value || 0)];
  const panes = $("retrieval-panes");
  panes.textContent = "";
  panes.appendChild(notePane(`${g.query_file_id} (${g.split})`, state.texts[g.query_file_id]));
  for (const n of g.notes) {
    const pane = notePane(`#${n.rank} · ${n.ref_file_id} · score ${n.score.toFixed(4)}`, state.texts[n.ref_file_id]);
    pane.dataset.score = String(n.score);
    panes.appendChild(pane);
  }
}

// ---- GRPO rollouts ---------------------------------------------------------------------------

function addRollouts(name, text) {
  const groups = JSON.parse(wasm_bindgen.rolloutGroups(text, name));
  state.rollouts.push(...groups);
  renderRollouts();
}

function fixed(value) { return value === null || value === undefined ? "–" : value.toFixed(3); }

// The completion's text with its decision tags shown as coloured labels.
function taggedText(cell, text) {
  const pattern = /<\/?([a-z_]+)>/g;
  let at = 0;
  for (const m of text.matchAll(pattern)) {
    const category = TAGS.indexOf(m[1]);
    if (category < 1) continue;
    cell.append(text.slice(at, m.index));
    const tag = document.createElement("span");
    tag.className = `tag cat-${category}`;
    tag.textContent = m[0];
    cell.appendChild(tag);
    at = m.index + m[0].length;
  }
  cell.append(text.slice(at));
}

function renderRollouts() {
  const groups = state.rollouts;
  $("rollouts").hidden = groups.length === 0;
  const completions = groups.reduce((n, g) => n + g.completions.length, 0);
  const dropped = groups.filter((g) => g.dropped).length;
  $("rollout-summary").textContent =
    `${groups.length} groups (${dropped} dropped), ${completions} completions. Open a group to read its completions.`;
  const list = $("rollout-groups");
  list.textContent = "";
  for (const g of groups) {
    const box = document.createElement("details");
    const summary = document.createElement("summary");
    const means = g.means.map((m) => `${m.name} ${fixed(m.value)}`).join(" · ");
    summary.textContent = `step ${g.step} · ${g.prompt_id} · ${means}`;
    if (g.dropped) {
      const note = document.createElement("span");
      note.className = "dropped";
      note.textContent = " · dropped (no signal)";
      summary.appendChild(note);
    }
    box.appendChild(summary);
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    for (const h of ["#", "tokens", "ended", "in loss", ...g.means.map((m) => m.name), "advantage", "completion"]) {
      const th = document.createElement("th");
      th.textContent = h;
      head.appendChild(th);
    }
    const body = table.createTBody();
    for (const c of g.completions) {
      const row = body.insertRow();
      if (!c.in_loss) row.className = "out";
      const cells = [c.index, c.tokens, c.finished ? "yes" : "cut", c.in_loss ? "yes" : "no",
        ...c.rewards.map((r) => fixed(r.value)), c.advantage.toFixed(3)];
      for (const v of cells) row.insertCell().textContent = v;
      const text = row.insertCell();
      text.className = "text";
      taggedText(text, c.completion);
    }
    box.appendChild(table);
    list.appendChild(box);
  }
}

// ---- start ----------------------------------------------------------------------------------

async function main() {
  categoryLegend();
  try {
    const base64 = window.LAMAR_WASM_BASE64;
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    await wasm_bindgen({ module_or_path: bytes });
  } catch (e) {
    message(`could not start the WebAssembly module: ${errorText(e)}`, "error");
    $("status").textContent = "error";
    return;
  }
  state.viewer = new wasm_bindgen.Viewer();
  setupInputs();
  $("retrieval-query").addEventListener("change", renderRetrieval);
  if (window.LAMAR_DATA) loadPreloaded(window.LAMAR_DATA);
  refresh(true);
}

main();
