// One run's page: while it trains, redraw the charts and the status every two seconds.
document.addEventListener("DOMContentLoaded", () => {
  const charts = document.getElementById("charts");
  const name = charts.dataset.name;
  const status = document.getElementById("status");
  const stop = document.getElementById("stop"), resume = document.getElementById("resume");
  const message = document.getElementById("message"), log = document.getElementById("log");
  const live = s => ["starting", "running", "stopping"].includes(s);
  let timer = null;

  async function refresh() {
    let state;
    try {
      const response = await fetch(`/api/state/${name}`, {headers: {"X-CSRF-Token": CSRF()}});
      if (!response.ok) return;  // a passing hiccup: the next tick asks again
      state = await response.json();
    } catch (e) { return; }
    if (state.charts) charts.innerHTML = state.charts;
    const was = charts.dataset.status;
    charts.dataset.status = state.status;
    status.textContent = state.status;
    status.className = "status " + state.status;
    document.getElementById("progress").textContent = state.last_step === null ? "" : `step ${state.last_step}`;
    stop.hidden = !state.can_stop;
    resume.hidden = !state.can_resume;
    if (state.status === "failed" && state.log.length) { log.hidden = false; log.textContent = state.log.join("\n"); }
    if (live(was) && !live(state.status)) { clearInterval(timer); location.reload(); }
  }
  function watch() { if (!timer) timer = setInterval(refresh, 2000); }
  if (live(charts.dataset.status)) watch();

  stop.addEventListener("click", async () => {
    stop.disabled = true;
    try { await api(`/api/stop/${name}`, {}); status.textContent = "stopping"; charts.dataset.status = "stopping"; }
    catch (e) { message.hidden = false; message.textContent = e.message; }
    stop.disabled = false;
  });
  resume.addEventListener("click", async () => {
    resume.disabled = true;
    try { await api(`/api/resume/${name}`, {}); charts.dataset.status = "starting"; resume.hidden = true; watch(); refresh(); }
    catch (e) { message.hidden = false; message.textContent = e.message; }
    resume.disabled = false;
  });
});
