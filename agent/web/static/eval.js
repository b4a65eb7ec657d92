// The eval page: start a suite and follow its progress; the runs list reloads when it is done.
"use strict";
(function () {
  const T = JSON.parse(document.getElementById("i18n").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const form = document.getElementById("eval-form");
  const box = document.getElementById("eval-job");
  const bar = document.getElementById("eval-progress");
  const label = document.getElementById("eval-state");

  async function call(method, path, body) {
    const init = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch("/ui/api" + path, init);
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((data.error && data.error.message) || res.status);
    return data;
  }

  function show(job) {
    box.hidden = false;
    bar.max = Math.max(job.total, 1);
    bar.value = job.done;
    const word = T[job.state] || job.state;
    label.textContent = job.state === "failed" ? T.failed + job.error : `${word} ${job.done}/${job.total} ${job.label}`;
    label.dataset.state = job.state;
  }

  async function follow(jobId) {
    for (;;) {
      const job = await call("GET", "/eval/jobs/" + jobId);
      show(job);
      if (job.state === "done") {
        setTimeout(() => window.location.reload(), 300);
        return;
      }
      if (job.state === "failed") return;
      await new Promise((r) => setTimeout(r, 400));
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { suite: form.elements.suite.value };
    if (form.elements.limit.value) body.limit = Number(form.elements.limit.value);
    if (form.elements.backend.value) body.backend = form.elements.backend.value;
    try {
      const job = await call("POST", "/eval/runs", body);
      show(job);
      follow(job.job_id);
    } catch (err) {
      box.hidden = false;
      label.textContent = T.failed + err.message;
    }
  });
  if (box.dataset.job) follow(box.dataset.job);
})();
