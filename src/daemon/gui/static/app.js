// pbxguard admin GUI: the little behaviour that needs a script. Served from the binary; no inline
// code anywhere (the Content-Security-Policy forbids it). Each part looks for its own markup.
"use strict";

// Buttons that ask before doing something destructive: <button data-confirm="Delete 1001?">.
document.addEventListener("click", (e) => {
  const b = e.target.closest("[data-confirm]");
  if (b && !window.confirm(b.dataset.confirm)) e.preventDefault();
});

// Extensions: the password policy's reasons while a secret is typed (the server checks again on
// submit). Asks /extensions/check-secret at most every 250 ms; the newest answer wins.
(() => {
  const secret = document.getElementById("secret");
  const out = document.getElementById("secret-reasons");
  if (!secret || !out) return;
  const form = secret.form;
  const number = form.querySelector("[name=number]");
  const csrf = form.querySelector("[name=csrf]");
  let timer = 0, seq = 0;
  const show = (reasons, enforced) => {
    out.replaceChildren();
    if (!secret.value) return;
    if (reasons.length === 0) {
      const li = document.createElement("li");
      li.className = "ok";
      li.textContent = "meets the password policy";
      out.append(li);
      return;
    }
    for (const r of reasons) {
      const li = document.createElement("li");
      li.className = enforced ? "error-text" : "warn-text";
      li.textContent = r;
      out.append(li);
    }
  };
  const check = async () => {
    const mine = ++seq;
    try {
      const res = await fetch("/extensions/check-secret", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": csrf ? csrf.value : "" },
        body: JSON.stringify({ number: number ? number.value : "", secret: secret.value }),
      });
      if (!res.ok || mine !== seq) return;
      const v = await res.json();
      show(v.reasons || [], v.enforced);
    } catch (_) { /* offline: the server checks on submit anyway */ }
  };
  const later = () => { clearTimeout(timer); timer = setTimeout(check, 250); };
  secret.addEventListener("input", later);
  if (number) number.addEventListener("input", later);
})();

// Certificates: a chosen PEM file fills its textarea (<input type=file data-fill="chain">), so the
// form posts text and the server needs no multipart parser. Nothing leaves the page until submit.
(() => {
  if (!document.getElementById("cert-import")) return;
  for (const input of document.querySelectorAll("input[type=file][data-fill]")) {
    input.addEventListener("change", async () => {
      const target = document.getElementById(input.dataset.fill);
      const file = input.files && input.files[0];
      if (!target || !file) return;
      if (file.size > 1048576) { target.value = ""; window.alert("That file is over 1 MiB: not a PEM certificate or key."); return; }
      target.value = await file.text();
    });
  }
})();

// Dashboard: the live security feed (server-sent events from /events/live). New rows go on top,
// at most 100 are kept; EventSource reconnects by itself and resumes after the last stored id.
(() => {
  const table = document.getElementById("live-feed");
  if (!table || !window.EventSource) return;
  const body = table.tBodies[0];
  const state = document.getElementById("live-state");
  const add = (v, live) => {
    const tr = document.createElement("tr");
    if (live) tr.className = "fresh";
    for (const text of [v.at, v.kind, v.source || "", v.user || "", v.detail]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    tr.dataset.kind = v.kind;
    if (v.source) tr.dataset.source = v.source;
    body.insertBefore(tr, body.firstChild);
    while (body.rows.length > 100) body.deleteRow(body.rows.length - 1);
  };
  const es = new EventSource("/events/live?after=" + encodeURIComponent(table.dataset.after || "0"));
  const on = (name) => es.addEventListener(name, (e) => {
    try { add(JSON.parse(e.data), true); } catch (_) { /* a malformed message is skipped */ }
  });
  on("decision");
  on("stored");
  es.onopen = () => { if (state) state.textContent = " (live)"; };
  es.onerror = () => { if (state) state.textContent = " (reconnecting…)"; };
})();

// Blacklists: imports running in the background report their progress; poll until each ends.
(() => {
  const list = document.getElementById("import-jobs");
  if (!list) return;
  for (const li of list.querySelectorAll("li[data-job]")) {
    const poll = async () => {
      if (li.dataset.state === "finished" || li.dataset.state === "failed") return;
      try {
        const res = await fetch("/blacklists/jobs/" + encodeURIComponent(li.dataset.job));
        if (!res.ok) return;
        const j = await res.json();
        li.dataset.state = j.state;
        li.querySelector(".state").textContent = j.state;
        const bar = li.querySelector("progress");
        bar.max = Math.max(j.total, 1);
        bar.value = j.done;
        li.querySelector(".count").textContent = j.done + " / " + j.total;
        li.querySelector(".message").textContent = j.message;
      } catch (_) { /* try again */ }
      setTimeout(poll, 500);
    };
    poll();
  }
})();
