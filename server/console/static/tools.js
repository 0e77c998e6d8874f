// Dealflow console: the editor's dry run (on a record found by name or pasted) and the impact
// preview of a draft on its group. Server data is shown with textContent only.
"use strict";

(function () {
  const form = document.getElementById("editor");
  if (!form) return;
  const area = document.getElementById("document");
  const csrf = form.dataset.csrf;

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function show(value) {
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { ok: response.ok, status: response.status, data: data };
  }

  function problems(box, answer) {
    const d = answer.data || {};
    box.append(el("p", "Not run (HTTP " + answer.status + "): " + (d.message || ""), "error"));
    if (d.errors && d.errors.length) {
      const list = el("ul", undefined, "errors");
      for (const e of d.errors) {
        const item = el("li");
        item.append(el("code", e.field), document.createTextNode(": " + e.message));
        list.append(item);
      }
      box.append(list);
    }
  }

  function table(headings, rows, cls) {
    const t = el("table", undefined, cls);
    const head = el("tr");
    for (const h of headings) {
      const th = el("th", h);
      th.scope = "col";
      head.append(th);
    }
    const thead = el("thead");
    thead.append(head);
    const body = el("tbody");
    for (const row of rows) body.append(row);
    t.append(thead, body);
    const wrap = el("div", undefined, "scroll");
    wrap.append(t);
    return wrap;
  }

  function row(cells, attrs) {
    const tr = el("tr");
    for (const [k, v] of Object.entries(attrs || {})) tr.setAttribute(k, v);
    for (const c of cells) {
      const td = el("td");
      if (c instanceof Node) td.append(c); else td.textContent = c;
      tr.append(td);
    }
    return tr;
  }

  // --- dry run --------------------------------------------------------------------------

  const panel = document.getElementById("dry-run");
  if (panel) {
    const search = document.getElementById("record-search");
    const picks = document.getElementById("record-results");
    const recordId = document.getElementById("record-id");
    const pasted = document.getElementById("record-json");
    const result = document.getElementById("dry-run-result");
    let timer = null;
    let seq = 0;

    async function find() {
      const mine = ++seq;
      const url = panel.dataset.search + "?" + new URLSearchParams({
        entity: panel.dataset.entity, q: search.value,
      });
      const response = await fetch(url, { credentials: "same-origin" });
      if (mine !== seq || !response.ok) return;
      picks.replaceChildren();
      for (const found of await response.json()) {
        const item = el("li");
        const pick = el("button", "#" + found.id + " " + found.label, "pick");
        pick.type = "button";
        pick.addEventListener("click", function () {
          recordId.value = String(found.id);
          pasted.value = "";
          run();
        });
        item.append(pick);
        picks.append(item);
      }
      if (!picks.children.length) picks.append(el("li", "No record matches.", "hint"));
    }

    if (search) {
      search.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(find, 250);
      });
    }

    function render(out) {
      result.replaceChildren();
      const verdict = el("p", undefined, out.matched ? "ok" : "warn");
      verdict.id = "dry-run-verdict";
      verdict.textContent = out.matched ? "Matched." :
        (out.trigger_fires ? "Not matched." :
          "Not matched: the trigger does not fire on this change.");
      result.append(verdict);
      const c = out.condition || {};
      if (c.error) result.append(el("p", "The condition failed: " + c.error, "error"));
      if (c.failed) {
        const why = el("p", undefined, "why-not");
        why.id = "why-not";
        why.append(document.createTextNode("Why not: "), el("code", c.failed),
          document.createTextNode(" is false"));
        const seen = Object.entries(c.values || {}).filter(([k]) => k !== c.failed);
        if (seen.length) {
          why.append(document.createTextNode(" with "));
          seen.forEach(([k, v], i) => {
            if (i) why.append(document.createTextNode(", "));
            why.append(el("code", k + " = " + JSON.stringify(v)));
          });
        }
        result.append(why);
      }
      const changes = Object.entries(out.changes || {});
      if (changes.length) {
        result.append(el("h3", "Field changes"));
        result.append(table(["Field", "New value"], changes.map(([k, v]) =>
          row([el("code", k), show(v)], { "data-change": k })), "changes"));
      }
      if (out.actions && out.actions.length) {
        result.append(el("h3", "Actions"));
        result.append(table(["#", "Action", "Kind", "Preview"], out.actions.map((a) => {
          const detail = a.error ? el("span", a.error, "error") :
            el("pre", JSON.stringify(a.preview, null, 2));
          return row([String(a.index), a.type, a.kind, detail], { "data-action": String(a.index) });
        }), "actions"));
      }
    }

    async function run() {
      result.setAttribute("aria-busy", "true");
      const body = { document: area.value };
      if (pasted.value.trim()) body.record = pasted.value;
      else body.record_id = recordId ? recordId.value.trim() : "";
      try {
        const answer = await post(panel.dataset.url, body);
        if (answer.ok) render(answer.data);
        else { result.replaceChildren(); problems(result, answer); }
      } finally {
        result.removeAttribute("aria-busy");
      }
    }

    document.getElementById("dry-run-button").addEventListener("click", run);
  }

  // --- impact preview -------------------------------------------------------------------

  const impact = document.getElementById("impact");
  if (impact) {
    const box = document.getElementById("impact-result");

    function money(n) {
      return Number(n).toFixed(2);
    }

    function render(out) {
      box.replaceChildren();
      box.append(el("p", out.deals_changed + " of " + out.deals_scanned +
        " open deal(s) would change.", out.deals_changed ? "warn" : "ok"));
      if (out.report && out.report.overlap_count) {
        box.append(el("p", "The group would overlap: " + out.report.summary, "error"));
      }
      if (out.conflicts) {
        box.append(el("p", out.conflicts + " deal(s) would be left as they are: two or more " +
          "workflows of the group match them (a conflict): #" + out.conflict_ids.join(", #") +
          (out.conflicts > out.conflict_ids.length ? ", …" : ""), "error"));
      }
      if (out.changes.length) {
        const rows = [];
        for (const d of out.changes) {
          for (const [field, pair] of Object.entries(d.changes)) {
            rows.push(row(["#" + d.id, d.title, field, show(pair[0]), show(pair[1])],
              { "data-deal": String(d.id), "data-field": field }));
          }
        }
        box.append(table(["Deal", "Title", "Field", "Old", "New"], rows, "impact-deals"));
      }
      if (out.forecast.length) {
        box.append(el("h3", "Weighted forecast per month"));
        box.append(table(["Month", "Currency", "Before", "After"], out.forecast.map((m) =>
          row([m.month || "no close date", m.currency, money(m.weighted_before),
            money(m.weighted_after)], { "data-month": m.month || "" })), "impact-forecast"));
      }
    }

    document.getElementById("impact-button").addEventListener("click", async function () {
      box.setAttribute("aria-busy", "true");
      try {
        const answer = await post(impact.dataset.url, { document: area.value });
        if (answer.ok) render(answer.data);
        else { box.replaceChildren(); problems(box, answer); }
      } finally {
        box.removeAttribute("aria-busy");
      }
    });
  }
})();
