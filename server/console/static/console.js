// Dealflow console: checks the workflow being edited as it is typed (400 ms after the last
// key), through the server's own validator. No inline script: the CSP forbids it.
"use strict";

(function () {
  const form = document.getElementById("editor");
  if (!form) return;
  const area = document.getElementById("document");
  const box = document.getElementById("problems");
  let timer = null;
  let seq = 0;

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function combination(values) {
    return Object.entries(values).map(([k, v]) => k + " = " + JSON.stringify(v)).join(", ");
  }

  function render(result) {
    box.replaceChildren();
    if (result.errors.length) {
      box.append(el("h3", "Problems"));
      const list = el("ul", undefined, "errors");
      for (const e of result.errors) {
        const item = el("li");
        item.append(el("code", e.field), document.createTextNode(": " + e.message));
        list.append(item);
      }
      box.append(list);
    }
    const g = result.group;
    if (g) {
      box.append(el("h3", "Group " + g.group));
      if (g.overlap_count) {
        box.append(el("p", g.overlap_count + " overlapping combination(s):", "error"));
        const list = el("ul", undefined, "errors");
        for (const o of g.overlaps) {
          list.append(el("li", combination(o.combination) + " → " + o.workflows.join(", "), "overlap"));
        }
        box.append(list);
      }
      if (g.gap_count) {
        box.append(el("p", g.gap_count + " combination(s) no workflow matches" +
          (g.exhaustive ? ":" : " (warning):"), g.exhaustive ? "error" : "warn"));
        const list = el("ul");
        for (const gap of g.gaps) list.append(el("li", combination(gap), "gap"));
        box.append(list);
      }
      for (const e of g.errors) box.append(el("p", e, "error"));
      if (!g.overlap_count && !g.gap_count && !g.errors.length) box.append(el("p", "No overlap, no gap.", "ok"));
    }
    if (result.valid) {
      const ok = el("p", "Valid.", "ok");
      ok.id = "valid";
      box.append(ok);
    }
  }

  async function check() {
    const mine = ++seq;
    box.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(form.dataset.check, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf },
        body: area.value,
        credentials: "same-origin",
      });
      if (mine !== seq) return; // an older answer arriving late
      if (!response.ok) {
        box.replaceChildren(el("p", "Could not check (HTTP " + response.status + ").", "error"));
        return;
      }
      render(await response.json());
    } finally {
      if (mine === seq) box.removeAttribute("aria-busy");
    }
  }

  area.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 400);
  });
})();
