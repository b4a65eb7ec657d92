// The agent's page: draft, re-check as the agent types, quick phrases, welcome, feedback.
// No framework; every call sends the session's CSRF token in X-CSRF-Token.
"use strict";
(function () {
  const T = JSON.parse(document.getElementById("i18n").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const base = "/ui/api";
  const $ = (id) => document.getElementById(id);
  const form = $("draft-form");
  const text = $("draft-text");
  const backdrop = $("backdrop");
  let current = null; // the draft as served: {draft_id, draft, ...}
  let checkTimer = null;
  let checkSeq = 0;
  let sent = false;
  let revise = false; // the next feedback on this draft is a new revision of the agent's earlier one

  async function call(method, path, body) {
    const init = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(base + path, init);
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((data.error && data.error.message) || res.status);
    return data;
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children || []) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    return node;
  }

  // --- findings highlighted at their spans (a backdrop under the transparent textarea) ---------
  function paint(findings) {
    const value = text.value;
    const spans = findings.filter((f) => f.end > f.start).sort((a, b) => a.start - b.start);
    backdrop.textContent = "";
    let at = 0;
    for (const f of spans) {
      if (f.start < at) continue;
      backdrop.appendChild(document.createTextNode(value.slice(at, f.start)));
      backdrop.appendChild(el("mark", { text: value.slice(f.start, f.end), title: f.message }));
      at = f.end;
    }
    backdrop.appendChild(document.createTextNode(value.slice(at) + "\n"));
    const list = $("findings");
    list.textContent = "";
    for (const f of findings) {
      const label = T["rule_" + f.rule] || f.rule;
      list.appendChild(
        el("li", { "data-testid": "finding", "data-rule": f.rule }, [
          el("strong", { text: label }),
          " “" + f.text + "” ",
          el("span", { class: "hint", text: f.message }),
        ])
      );
    }
    $("check-state").textContent = findings.length ? findings.length + " " + T.found : T.clean;
    showStatus(findings.length ? "needs_review" : current && current.status);
  }

  function showStatus(status) {
    const badge = $("draft-status");
    if (!status) return;
    badge.className = "badge " + (status === "ok" ? "ok" : "warn");
    badge.textContent = T[status] || status;
  }

  function syncScroll() {
    backdrop.scrollTop = text.scrollTop;
  }

  async function recheck() {
    const seq = ++checkSeq;
    $("check-state").textContent = T.checking;
    try {
      const query = form.elements.query.value || null;
      const verdict = await call("POST", "/check", { draft: text.value, query });
      if (seq !== checkSeq) return;
      paint(verdict.violations);
      $("fix").hidden = !verdict.fixed;
      $("fix-text").textContent = verdict.fixed || "";
    } catch (err) {
      if (seq === checkSeq) $("check-state").textContent = T.failed + err.message;
    }
  }

  function edited() {
    return current !== null && text.value !== current.draft;
  }

  function updateButtons() {
    const done = sent || current === null;
    $("accept").disabled = done || edited();
    $("edit").disabled = done || !edited() || !text.value.trim();
    $("reject").disabled = done;
  }

  $("apply-fix").addEventListener("click", () => {
    text.value = $("fix-text").textContent;
    text.dispatchEvent(new Event("input"));
  });

  text.addEventListener("input", () => {
    paint([]); // the old spans no longer fit the text: unmarked until the check answers
    $("check-state").textContent = T.checking;
    $("fix").hidden = true;
    updateButtons();
    clearTimeout(checkTimer);
    checkTimer = setTimeout(recheck, 300);
  });
  text.addEventListener("scroll", syncScroll);

  // --- drafting -----------------------------------------------------------------------------
  function orderOf() {
    const f = form.elements;
    const order = {};
    for (const name of ["status", "courier", "tracking_no", "region", "platform"]) {
      if (f[name].value.trim()) order[name] = f[name].value.trim();
    }
    if (f.amount.value !== "") order.amount = Number(f.amount.value);
    return Object.keys(order).length ? order : null;
  }

  function turnsOf() {
    return Array.from(document.querySelectorAll("#turns .turn"))
      .map((row) => ({ role: row.querySelector("select").value, text: row.querySelector("input").value.trim() }))
      .filter((t) => t.text);
  }

  $("add-turn").addEventListener("click", () => {
    const row = $("turn-row").content.firstElementChild.cloneNode(true);
    row.querySelector(".remove").addEventListener("click", () => row.remove());
    $("turns").appendChild(row);
  });

  function showCitations(citations) {
    const list = $("citations");
    list.textContent = "";
    for (const c of citations) {
      const steps = el("ol", { class: "steps" }, (c.next_steps || []).map((s) => el("li", { text: s })));
      const item = el("li", { "data-testid": "citation", "data-id": c.id }, [
        el("strong", { text: c.title }),
        " ",
        el("code", { text: c.id }),
        el("span", { class: "hint", text: " " + T.score + " " + Number(c.score).toFixed(2) }),
      ]);
      if (c.next_steps && c.next_steps.length) {
        item.appendChild(el("div", { class: "next" }, [el("span", { class: "badge", text: T.next }), steps]));
      }
      list.appendChild(item);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector('[data-testid="draft-button"]');
    button.disabled = true;
    button.dataset.label = button.dataset.label || button.textContent;
    button.textContent = T.drafting;
    $("draft-error").hidden = true;
    try {
      const body = { query: form.elements.query.value, shop: form.elements.shop.value, turns: turnsOf() };
      const order = orderOf();
      if (order) body.order = order;
      current = await call("POST", "/draft", body);
      sent = false;
      revise = false;
      $("revise").hidden = true;
      text.value = current.draft;
      $("draft-out").hidden = false;
      $("draft-out").dataset.draftId = current.draft_id;
      paint(current.violations);
      showCitations(current.citations);
      $("notes").textContent = "";
      for (const n of current.notes) $("notes").appendChild(el("li", { text: n }));
      $("feedback-state").textContent = "";
      $("reject-reason").value = "";
      updateButtons();
    } catch (err) {
      $("draft-error").textContent = T.failed + err.message;
      $("draft-error").hidden = false;
    } finally {
      button.disabled = false;
      button.textContent = button.dataset.label;
    }
  });

  // --- feedback -----------------------------------------------------------------------------
  async function feedback(action) {
    if (current === null) return;
    const body = { draft_id: current.draft_id, action, idempotency_key: crypto.randomUUID(), revise };
    if (action === "edited") body.final_text = text.value;
    if (action === "accepted") body.final_text = current.draft;
    if (action === "rejected") {
      const reason = $("reject-reason").value.trim();
      if (!reason) {
        $("feedback-state").textContent = T.need_reason;
        $("reject-reason").focus();
        return;
      }
      body.reason = reason;
    }
    sent = true;
    updateButtons();
    try {
      const record = await call("POST", "/feedback", body);
      const n = record.revision > 1 ? T.revision.replace("{n}", record.revision) : "";
      $("feedback-state").textContent = T["sent_" + action] + n;
      $("revise").hidden = false;
    } catch (err) {
      sent = false;
      updateButtons();
      $("feedback-state").textContent = T.failed + err.message;
    }
  }
  $("revise").addEventListener("click", () => {
    sent = false;
    revise = true;
    $("revise").hidden = true;
    $("feedback-state").textContent = "";
    updateButtons();
  });
  $("accept").addEventListener("click", () => feedback("accepted"));
  $("edit").addEventListener("click", () => feedback("edited"));
  $("reject").addEventListener("click", () => feedback("rejected"));

  // --- copy ---------------------------------------------------------------------------------
  $("copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text.value);
    } catch (err) {
      text.select();
      document.execCommand("copy");
    }
    $("feedback-state").textContent = T.copied;
  });

  // --- welcome and quick phrases -------------------------------------------------------------
  function insert(snippet) {
    if (current === null) return;
    const at = text.selectionEnd || text.value.length;
    text.value = text.value.slice(0, at) + snippet + text.value.slice(at);
    text.dispatchEvent(new Event("input"));
  }

  async function loadWelcome() {
    try {
      const w = await call("GET", "/welcome?shop=" + encodeURIComponent(form.elements.shop.value));
      $("welcome").textContent = w.text;
    } catch (err) {
      $("welcome").textContent = "—";
    }
  }
  $("welcome-insert").addEventListener("click", () => insert($("welcome").textContent));

  let phraseTimer = null;
  async function loadPhrases() {
    const params = new URLSearchParams({ shop: form.elements.shop.value });
    if ($("phrase-category").value) params.set("category", $("phrase-category").value);
    if ($("phrase-search").value.trim()) params.set("search", $("phrase-search").value.trim());
    const list = $("phrases");
    try {
      const found = await call("GET", "/phrases?" + params.toString());
      list.textContent = "";
      if (!found.length) list.appendChild(el("li", { class: "hint", text: T.none }));
      for (const p of found.slice(0, 30)) {
        const use = el("button", { type: "button", class: "small", text: T.insert });
        use.addEventListener("click", () => insert(p.text));
        list.appendChild(
          el("li", { "data-testid": "phrase" }, [el("span", { class: "badge", text: p.label }), " ", el("strong", { text: p.title }), el("p", { text: p.text }), use])
        );
      }
    } catch (err) {
      list.textContent = T.failed + err.message;
    }
  }
  $("phrase-category").addEventListener("change", loadPhrases);
  $("phrase-search").addEventListener("input", () => {
    clearTimeout(phraseTimer);
    phraseTimer = setTimeout(loadPhrases, 250);
  });
  form.elements.shop.addEventListener("change", () => {
    loadWelcome();
    loadPhrases();
  });
  loadWelcome();
  loadPhrases();
})();
