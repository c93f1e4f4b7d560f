// The explorer's runtime: generic over cells.  Each cell's step, local Jacobian J_t and immediate
// partials ∂⁺s_t/∂θ are generated from SymPy (derive/javascript.py) into CELLS; this file runs them
// forwards, multiplies Jacobians through time and back-propagates, as numeric's engine does.
// Products of many factors are carried as mantissa × 2^exponent, renormalised by powers of two
// (exact), so 2^50 stays 1125899906842624 and 2^5000 is 10^1505.15, never Infinity.
"use strict";

const DATA = JSON.parse(document.getElementById("data").textContent);
const LOG10_2 = Math.log10(2);
const $ = (id) => document.getElementById(id);
const SVG = $("view-growth").namespaceURI;  // an inline <svg>'s namespace: the file names no address

// --- The functions generated code calls --------------------------------------------------------
function sigmoid(a) { return 1 / (1 + Math.exp(-a)); }
function relu(a) { return Math.max(a, 0); }
function heaviside(a, atZero) { return a > 0 ? 1 : a < 0 ? 0 : (atZero === undefined ? 0.5 : atZero); }

// --- Scaled numbers: value = m · 2^e --------------------------------------------------------------
function exponentOf(v) {
  // the e with 2^e <= |v| < 2^(e+1), for finite v != 0 (0 otherwise)
  if (v === 0 || !Number.isFinite(v)) return 0;
  let e = Math.floor(Math.log2(Math.abs(v)));
  if (Math.abs(v) < ldexp(1, e)) e -= 1;
  else if (Math.abs(v) >= ldexp(1, e + 1)) e += 1;
  return e;
}
function ldexp(m, e) {
  // m · 2^e in steps that stay exact (2^±1000 is exact; one product at the end rounds once)
  if (!Number.isFinite(e)) return e > 0 ? m * Infinity : m * 0;
  while (e > 1000) { m *= 2 ** 1000; e -= 1000; }
  while (e < -1000) { m *= 2 ** -1000; e += 1000; }
  return m * 2 ** e;
}
function log10Scaled(m, e) { return m === 0 ? -Infinity : Math.log10(Math.abs(m)) + e * LOG10_2; }
function asNumber(m, e) {
  // the double m · 2^e, or null when it is not one (over- or underflow, subnormal rounding)
  if (m === 0) return 0;
  if (!Number.isFinite(m)) return null;
  const total = exponentOf(m) + e;
  return total > 1023 || total < -1022 ? null : ldexp(m, e);
}
function maxAbs(rows) { let a = 0; for (const r of rows) for (const v of r) a = Math.max(a, Math.abs(v)); return a; }
function rescale(rows, e) {
  // rows / 2^k with k the exponent of the largest entry: exact, and keeps them near 1
  const a = maxAbs(rows);
  if (a === 0 || !Number.isFinite(a)) return [rows, e];
  const k = exponentOf(a);
  return [rows.map((r) => r.map((v) => ldexp(v, -k))), e + k];
}

function product(a, b, e) {
  // a · b · 2^e, each factor renormalised first, so no product of two entries over- or underflows
  const [as, ea] = rescale(a, 0), [bs, eb] = rescale(b, 0);
  return rescale(matmul(as, bs), e + ea + eb);
}
function mark(el, m, e) {
  // a number for programs: its exact double where there is one, log10|·| and the sign
  const v = asNumber(m, e);
  el.dataset.log10 = String(log10Scaled(m, e));
  el.dataset.sign = String(Math.sign(m));
  if (v !== null) el.dataset.value = String(v); else delete el.dataset.value;
}

// --- Small matrices ----------------------------------------------------------------------------
function matmul(a, b) {
  return a.map((row) => b[0].map((_, j) => row.reduce((sum, v, k) => sum + v * b[k][j], 0)));
}
function identity(n) { return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => +(i === j))); }
function sigma1(a) {
  // the largest singular value: √ of the largest eigenvalue of AᵀA, by cyclic Jacobi rotations
  const n = a[0].length;
  const s = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) =>
    a.reduce((sum, row) => sum + row[i] * row[j], 0)));
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += s[p][q] * s[p][q];
    if (off === 0) break;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) {
      if (s[p][q] === 0) continue;
      const theta = (s[q][q] - s[p][p]) / (2 * s[p][q]);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1), sn = t * c;
      for (let k = 0; k < n; k++) {
        const kp = s[k][p], kq = s[k][q];
        s[k][p] = c * kp - sn * kq; s[k][q] = sn * kp + c * kq;
      }
      for (let k = 0; k < n; k++) {
        const pk = s[p][k], qk = s[q][k];
        s[p][k] = c * pk - sn * qk; s[q][k] = sn * pk + c * qk;
      }
    }
  }
  return Math.sqrt(Math.max(...s.map((row, i) => row[i]), 0));
}

// --- The unrolled cell ----------------------------------------------------------------------------
function unroll(lesson, code, p, xs, s0) {
  // forwards: every quantity q_t, J_t = ∂s_t/∂s_{t−1} and ∂⁺s_t/∂θ, t = 1..T
  const steps = [];
  let s = s0.slice();
  for (const x of xs) {
    const q = code.step(p, s, x);
    steps.push({ q, J: code.jacobian(p, s, x, q), P: code.partials(p, s, x, q) });
    s = lesson.state_slots.map((j) => q[j]);
  }
  return steps;
}

function byLag(lesson, steps) {
  // ∂s_T/∂s_k for k = T−1..0, backwards: M_k = M_{k+1} J_{k+1}; its (out, out) entry and σ₁
  const out = lesson.output, T = steps.length;
  let M = identity(lesson.states.length), e = 0;
  const lags = new Array(T);
  for (let t = T; t >= 1; t--) {
    [M, e] = product(M, steps[t - 1].J, e);
    lags[t - 1] = { m: M[out][out], e, log10Norm: Math.log10(sigma1(M)) + e * LOG10_2 };
  }
  return lags;  // lags[k] is ∂s_T/∂s_k
}

function growth(lesson, steps) {
  // ∂s_t/∂s_0 for t = 1..T, forwards: N_t = J_t N_{t−1}; log10 |(out, out) entry|
  const out = lesson.output;
  let N = identity(lesson.states.length), e = 0;
  return steps.map((step) => {
    [N, e] = product(step.J, N, e);
    return log10Scaled(N[out][out], e);
  });
}

function carousel(steps, c) {
  // log10 |∏_{t=k+1}^{T} (J_t)_{cc}| for k = 0..T−1: the path along c alone (∏ f_t for the LSTM)
  const T = steps.length, out = new Array(T);
  let sum = 0;
  for (let t = T; t >= 1; t--) { sum += Math.log10(Math.abs(steps[t - 1].J[c][c])); out[t - 1] = sum; }
  return out;
}

function bptt(lesson, steps) {
  // ∂h_T/∂θ = Σ_t λ_t ∂⁺s_t/∂θ with λ_T = e_out and λ_{t−1} = λ_t J_t, each term at its own scale
  const P = lesson.params.length;
  let lambda = [lesson.states.map((_, i) => +(i === lesson.output))], e = 0;
  let total = [new Array(P).fill(0)], te = null;
  for (let t = steps.length; t >= 1; t--) {
    if (P) {
      const [term, et] = product(lambda, steps[t - 1].P, e);
      if (te === null || et > te) { total = total.map((r) => r.map((v) => ldexp(v, (te ?? et) - et))); te = et; }
      total = [total[0].map((v, j) => v + ldexp(term[0][j], et - te))];
      [total, te] = rescale(total, te);
    }
    [lambda, e] = product(lambda, steps[t - 1].J, e);
  }
  return total[0].map((m) => ({ m, e: te ?? 0 }));
}

// --- Words and numbers -----------------------------------------------------------------------------
function g4(v) { return Number(v.toPrecision(4)).toString(); }
function power10(log10) { return `10^${log10.toFixed(2)}`; }
function shown(m, e) {
  // the exact double where there is one (2^50 = 1125899906842624), its power of ten beside it
  const v = asNumber(m, e);
  if (m === 0) return "0";
  if (Number.isNaN(m)) return "not a number: a step's derivative is undefined here (0/0)";
  if (!Number.isFinite(m)) return "beyond float64: the states overflowed";
  const sign = m < 0 ? "−" : "";
  const size = power10(log10Scaled(m, e));
  return v === null ? `${sign}${size}` : `${String(v)} (${sign}${size})`;
}

function regime(lesson, p, log10Norm, T) {
  // derive.regime.judge: the measured rate of ‖∂s_T/∂s_0‖₂ decides; where nothing could be measured
  // (a derivative of exactly 0, or none), Pascanu's bound (γσ₁)^T does, in derive's own words (DATA.regime)
  const rate = Number.isFinite(log10Norm) ? log10Norm / T : null;
  const product = lesson.bound ? lesson.bound.gamma * Math.abs(p[lesson.bound.weight]) : null;
  if (rate === null) {
    const [verdict, why] = DATA.regime[product === null ? "unmeasured" : product < 1 ? "below" : product > 1 ? "above" : "at"];
    return { verdict, why, rate };
  }
  const verdict = Math.abs(rate * T) < DATA.neutral_decades ? "neutral (measured)"
    : rate < 0 ? "vanishing (measured)" : "exploding (measured)";
  let why = `log10 of the derivative changes by ${g4(rate)} per step`;
  if (product !== null) {
    const allows = product < 1 ? "guarantees vanishing" : product > 1 ? "allows growth" : "is flat";
    why += `; the bound (γσ₁ = ${g4(product)} ${product < 1 ? "<" : product > 1 ? ">" : "="} 1) ${allows}`;
    if (product > 1 && rate < 0) why += ", but φ saturates";
  }
  return { verdict, why, rate };
}

// --- Plots: a small SVG drawer -----------------------------------------------------------------
function niceTicks(lo, hi, count, whole) {
  // round steps (1, 2, 5 × 10^j), whole numbers only on an axis of steps; counted, so never endless
  const raw = (hi - lo) / count;
  if (!(raw > 0) || !Number.isFinite(raw)) return [];
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max([1, 2, 5, 10].map((f) => f * mag).find((v) => v >= raw), whole ? 1 : 0);
  const ticks = [];
  for (let i = Math.ceil(lo / step); i <= Math.floor(hi / step) && ticks.length <= 2 * count; i++) {
    ticks.push(Math.abs(i * step) < step * 1e-9 ? 0 : i * step);
  }
  return ticks;
}
function tick(v) {
  return v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3) ? v.toExponential(1).replace(".0e", "e") : g4(v);
}
function node(tag, attrs, parent, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  if (parent) parent.appendChild(el);
  return el;
}
function plot(svg, series, xlabel, ylabel) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const W = 440, H = 260, L = 68, R = 10, Tp = 10, B = 44;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const finite = series.flatMap((s) => s.ys.filter(Number.isFinite));
  const xs = series.flatMap((s) => s.xs);
  let [ylo, yhi] = finite.length ? [Math.min(...finite), Math.max(...finite)] : [0, 1];
  if (!(yhi - ylo > Math.abs(yhi) * 1e-9)) {  // a flat line: a band around it, wide enough to tick
    const pad = Math.max(1, Math.abs(yhi) * 1e-3);
    ylo -= pad; yhi += pad;
  }
  const [xlo, xhi] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  // halves: yhi − ylo of ±1.5e308 would overflow
  const X = (x) => L + (x - xlo) / (xhi - xlo) * (W - L - R), Y = (y) => Tp + (yhi / 2 - y / 2) / (yhi / 2 - ylo / 2) * (H - Tp - B);
  for (const t of niceTicks(ylo, yhi, 5, false)) {
    node("line", { x1: L, x2: W - R, y1: Y(t), y2: Y(t), class: "grid" }, svg);
    node("text", { x: L - 6, y: Y(t) + 5, class: "tick", "text-anchor": "end" }, svg, tick(t));
  }
  for (const t of niceTicks(xlo, xhi, 5, true)) {
    node("text", { x: X(t), y: H - B + 20, class: "tick", "text-anchor": "middle" }, svg, tick(t));
  }
  node("rect", { x: L, y: Tp, width: W - L - R, height: H - Tp - B, class: "frame" }, svg);
  node("text", { x: (L + W - R) / 2, y: H - 6, class: "label", "text-anchor": "middle" }, svg, xlabel);
  node("text", { x: 14, y: (Tp + H - B) / 2, class: "label", "text-anchor": "middle",
    transform: `rotate(-90 14 ${(Tp + H - B) / 2})` }, svg, ylabel);
  series.forEach((s, i) => {
    let d = "", pen = "M";
    s.xs.forEach((x, j) => {
      if (!Number.isFinite(s.ys[j])) { pen = "M"; return; }
      d += `${pen}${X(x).toFixed(1)},${Y(s.ys[j]).toFixed(1)}`; pen = "L";
    });
    node("path", { d, class: `line s${i}` }, svg);
    node("text", { x: L + 10, y: Tp + 20 + 20 * i, class: `legend s${i}` }, svg, s.name);
  });
}

// --- The page's state, its controls and its link ------------------------------------------------
const state = { lesson: null, T: DATA.T, p: [], inputs: "1", s0: [] };
const byKey = Object.fromEntries(DATA.lessons.map((l) => [l.key, l]));

const NUMBER = new RegExp(DATA.number);  // derive.values' rule for a typed number: no hex, no "Infinity"
function number(text) {
  const v = String(text).trim();
  return NUMBER.test(v) && Number.isFinite(Number(v)) ? Number(v) : null;
}
function parseInputs(text) {
  const xs = text.split(",").map(number);
  return xs.length && xs.every((v) => v !== null) ? xs : null;
}
function inputsFor(T) {
  // x_1..x_T: one value held for every step, or the list, its last value held after its end
  const xs = parseInputs(state.inputs) || [1];
  return Array.from({ length: T }, (_, t) => xs[Math.min(t, xs.length - 1)]);
}

function choose(lesson) {
  state.lesson = lesson;
  state.p = lesson.params.map((q) => q.value);
  state.s0 = lesson.states.map(() => 0);
  const examples = Object.values(lesson.input_examples);
  state.inputs = examples.length ? examples[0].join(", ") : "1";
  if (examples.length) state.T = Math.min(examples[0].length, DATA.steps);
}

function slider(parent, id, label, value, onchange) {
  const row = document.createElement("div");
  row.className = "param";
  const name = document.createElement("label");
  name.htmlFor = id; name.textContent = label;
  const range = document.createElement("input");
  Object.assign(range, { type: "range", id, min: -4, max: 4, step: 0.01, value });
  const box = document.createElement("input");
  Object.assign(box, { type: "number", step: "any", value, className: "number" });
  box.setAttribute("aria-label", `${label} (exact)`);
  range.addEventListener("input", () => { box.value = range.value; onchange(Number(range.value)); });
  box.addEventListener("change", () => {
    const v = number(box.value);
    box.setAttribute("aria-invalid", String(v === null));
    if (v !== null) { range.value = v; onchange(v); }
  });
  row.append(name, range, box);
  parent.appendChild(row);
}

function buildControls() {
  const lesson = state.lesson;
  $("cell").value = lesson.key;
  $("T").value = state.T;
  $("inputs").value = state.inputs;
  const params = $("params");
  params.replaceChildren();
  lesson.params.forEach((q, j) => slider(params, `p${j}`, q.name, state.p[j], (v) => { state.p[j] = v; update(); }));
  lesson.states.forEach((s, j) => slider(params, `s${j}`, `${s}_0`, state.s0[j], (v) => { state.s0[j] = v; update(); }));
  $("fixed").hidden = lesson.params.length > 0;
  const presets = $("presets");
  presets.replaceChildren();
  for (const example of lesson.examples) {
    const button = document.createElement("button");
    button.type = "button"; button.textContent = example.label;
    button.addEventListener("click", () => {
      for (const [j, v] of Object.entries(example.values)) state.p[Number(j)] = v;
      buildControls(); update();
    });
    presets.appendChild(button);
  }
  for (const [name, xs] of Object.entries(lesson.input_examples)) {
    const button = document.createElement("button");
    button.type = "button"; button.textContent = name;
    button.addEventListener("click", () => {
      state.inputs = xs.join(", "); state.T = Math.min(xs.length, DATA.steps);
      $("inputs").value = state.inputs; $("T").value = state.T; update();
    });
    presets.appendChild(button);
  }
  for (const section of document.querySelectorAll(".derivation")) section.hidden = section.dataset.cell !== lesson.key;
}

function fragment() {
  const l = state.lesson, f = new URLSearchParams();
  const variants = new Set(DATA.lessons.filter((m) => m.cell === l.cell).map((m) => m.variant));
  f.set("cell", l.cell);
  if (variants.size > 1) f.set("variant", l.variant);
  if (l.activation) f.set("activation", l.activation);
  l.params.forEach((q, j) => f.set(q.name, String(state.p[j])));
  f.set("T", String(state.T));
  f.set("x", state.inputs.replace(/\s+/g, ""));
  l.states.forEach((s, j) => { if (state.s0[j] !== 0) f.set(`${s}0`, String(state.s0[j])); });
  return f.toString().replace(/%2C/g, ",");  // x=0,0.5,0.25,1 reads as typed
}

function readFragment() {
  // cell, variant, activation pick the lesson; a parameter by its name (w) or table name (W_hh)
  const f = new URLSearchParams(location.hash.slice(1)), ignored = [];
  const wanted = (l) => l.cell === f.get("cell") && (!f.get("variant") || l.variant === f.get("variant")) &&
    (!f.get("activation") || l.activation === f.get("activation"));
  const lesson = f.has("cell") ? DATA.lessons.find(wanted) : byKey[DATA.start];
  choose(lesson || byKey[DATA.start]);
  if (f.has("cell") && !lesson) ignored.push(...["cell", "variant", "activation"].filter((k) => f.has(k)));
  for (const [k, v] of f) {
    const n = number(v), j = state.lesson.params.findIndex((q) => q.name === k || q.key === k);
    const s = state.lesson.states.findIndex((name) => `${name}0` === k);
    if (["cell", "variant", "activation"].includes(k)) continue;
    else if (k === "T" && Number.isInteger(n) && n >= 1 && n <= DATA.steps) state.T = n;
    else if (k === "x" && parseInputs(v)) state.inputs = v.split(",").join(", ");
    else if (j >= 0 && n !== null) state.p[j] = n;
    else if (s >= 0 && n !== null) state.s0[s] = n;
    else ignored.push(k);
  }
  $("notice").textContent = ignored.length ? `ignored in the link: ${ignored.join(", ")}` : "";
  $("notice").hidden = !ignored.length;
}

// --- Computing and showing ---------------------------------------------------------------------------
function setValue(id, m, e) {
  $(id).textContent = shown(m, e);
  mark($(id), m, e);
}

function update() {
  const lesson = state.lesson, T = state.T, code = CELLS[lesson.key];
  $("T-value").textContent = String(T);
  const steps = unroll(lesson, code, state.p, inputsFor(T), state.s0);
  const lags = byLag(lesson, steps), out = lesson.states[lesson.output];
  $("dh-name").textContent = `∂${out}_${T}/∂${out}_0 =`;
  setValue("dh-value", lags[0].m, lags[0].e);
  const norm = lags[0].log10Norm;
  $("norm-value").textContent = `‖∂s_${T}/∂s_0‖₂ = ${norm === -Infinity ? "0" : Number.isNaN(norm) ? "not a number" : power10(norm)}`;
  $("norm-value").dataset.log10 = String(lags[0].log10Norm);
  const r = regime(lesson, state.p, lags[0].log10Norm, T);
  $("regime").textContent = `${r.verdict}: ${r.why}`;
  $("regime").dataset.verdict = r.verdict;
  const output = steps[T - 1].q[lesson.state_slots[lesson.output]];
  $("meaning").hidden = !lesson.output_meaning;
  $("meaning").textContent = lesson.output_meaning &&
    `${out}_${T} = ${g4(output)}: ${lesson.output_meaning.replace("{next}", String(T + 1))}`;
  showStates(lesson, steps);
  showGrads(lesson, bptt(lesson, steps));
  draw(lesson, steps, lags);
  const link = `#${fragment()}`;
  $("link").href = link;
  document.body.dataset.ready = "1";  // update() ran to its end: what a test waits for
  try { history.replaceState(null, "", link); } catch (error) { /* a sandboxed frame */ }
}

function showStates(lesson, steps) {
  const final = $("final");
  final.replaceChildren();
  const q = steps[steps.length - 1].q;
  lesson.quantities.forEach((name, j) => {
    const item = document.createElement("li");
    const value = document.createElement("output");
    value.id = `final-${j}`; value.dataset.name = name; value.dataset.value = String(q[j]);
    value.textContent = String(q[j]);
    item.append(`${name}_${steps.length} = `, value);
    final.appendChild(item);
  });
}

function showGrads(lesson, grads) {
  const body = $("grads-body");
  body.replaceChildren();
  $("grads").hidden = !grads.length;
  $("grads-name").textContent = `∂${lesson.states[lesson.output]}_T/∂θ`;
  grads.forEach((g, j) => {
    const row = document.createElement("tr"), name = document.createElement("td"), value = document.createElement("td");
    value.dataset.param = lesson.params[j].key;
    name.textContent = lesson.params[j].name;
    value.textContent = shown(g.m, g.e);
    mark(value, g.m, g.e);
    row.append(name, value);
    body.appendChild(row);
  });
}

function draw(lesson, steps, lags) {
  const T = steps.length, out = lesson.states[lesson.output];
  const ts = steps.map((_, t) => t + 1), ks = lags.map((_, k) => k);
  plot($("view-growth"), [{ name: `log10 |∂${out}_t/∂${out}_0|`, xs: ts, ys: growth(lesson, steps) }],
    "t", `log10 |∂${out}_t/∂${out}_0|`);
  const lagSeries = [{ name: `log10 |∂${out}_T/∂${out}_k|`, xs: ks, ys: lags.map((l) => log10Scaled(l.m, l.e)) }];
  if (lesson.states.length > 1) lagSeries.push({ name: "log10 ‖∂s_T/∂s_k‖₂", xs: ks, ys: lags.map((l) => l.log10Norm) });
  plot($("view-lags"), lagSeries, "k", `log10 size at T = ${T}`);
  plot($("view-states"), lesson.states.map((s, i) => ({
    name: `${s}_t`, xs: [0, ...ts], ys: [state.s0[i], ...steps.map((st) => st.q[lesson.state_slots[i]])] })), "t", "state");
  $("carousel").hidden = !lesson.carousel.length;
  if (lesson.carousel.length) {
    plot($("view-carousel"), [...lesson.carousel.map((c, i) => ({
      name: `log10 |∏ ${lesson.carousel_factors[i]}|, along ${lesson.states[c]} alone`, xs: ks, ys: carousel(steps, c) })),
    lagSeries[0]], "k", `log10 size at T = ${T}`);
  }
}

function drawTrained() {
  const trained = DATA.trained;
  $("trained").hidden = !trained;
  if (!trained) return;
  $("trained-note").textContent = trained.note;
  plot($("view-trained"), [{ name: "log10 mean ‖∂ℓ/∂x_t‖", xs: trained.mean.map((_, t) => t + 1),
    ys: trained.mean.map((v) => Math.log10(v)) }], "input step t", "log10 sensitivity");
}

function start() {
  const select = $("cell");
  for (const l of DATA.lessons) {
    const option = document.createElement("option");
    option.value = l.key; option.textContent = l.label;
    select.appendChild(option);
  }
  $("T").max = DATA.steps;
  select.addEventListener("change", () => { choose(byKey[select.value]); buildControls(); update(); });
  $("T").addEventListener("input", () => { state.T = Number($("T").value); update(); });
  $("inputs").addEventListener("change", () => {
    const ok = parseInputs($("inputs").value) !== null;
    $("inputs").setAttribute("aria-invalid", String(!ok));
    if (ok) { state.inputs = $("inputs").value; update(); }
  });
  window.addEventListener("hashchange", () => { if (location.hash.slice(1) !== fragment()) { readFragment(); buildControls(); update(); } });
  readFragment();
  buildControls();
  drawTrained();
  update();
}

start();
