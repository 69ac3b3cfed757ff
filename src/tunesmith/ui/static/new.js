// The new-run form: send only what the person set; show the schema's problems beside their fields;
// re-estimate the cost (debounced) whenever a value changes.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("new-run");
  const general = document.getElementById("general");
  const body = document.getElementById("est-body");

  function chosen(section) { const s = form.querySelector(`[name="${section}.name"]`); return s ? s.value : null; }
  function showVariants() {
    form.querySelectorAll("[data-variant]").forEach(field => {
      const [section, variant] = field.dataset.variant.split(":");
      field.hidden = chosen(section) !== variant;
    });
  }
  function values() {
    const out = {};
    form.querySelectorAll("input[name], select[name]").forEach(input => {
      const field = input.closest(".field");
      if (field.hidden) return;
      if (input.value !== input.dataset.default || input.hasAttribute("data-always")) out[input.name] = input.value;
    });
    return out;
  }
  function showProblems(problems) {
    form.querySelectorAll(".field").forEach(f => { f.classList.remove("invalid"); f.querySelector(".error").textContent = ""; });
    general.hidden = true;
    const loose = [];
    for (const [key, messages] of Object.entries(problems || {})) {
      const field = [...form.querySelectorAll(`.field[data-key="${CSS.escape(key)}"]`)].find(f => !f.hidden);
      if (field) { field.classList.add("invalid"); field.querySelector(".error").textContent = messages.join("; "); }
      else loose.push(...messages);
    }
    if (loose.length) { general.hidden = false; general.textContent = loose.join("; "); }
  }

  let timer = null, asked = 0;
  async function estimate() {
    const mine = ++asked;
    if (!values()["data.train"]) { body.textContent = "Choose the data to see what the run will cost."; return; }
    body.textContent = "estimating…";
    try {
      const found = await api("/api/estimate", {values: values()});
      if (mine !== asked) return;
      showProblems({});
      if (found.error) { body.textContent = found.error; return; }
      body.innerHTML = "";
      const fits = document.createElement("div");
      fits.className = "fits " + (found.fits ? "yes" : "no");
      fits.id = "est-fits";
      fits.textContent = found.fits ? "fits this machine" : "does not fit this machine";
      const table = document.createElement("table");
      table.className = "kv";
      for (const [label, value] of [["peak memory", `${found.peak_memory_mb.toLocaleString()} MB of ${found.memory_mb.toLocaleString()} MB`],
                                    ["training time", `${found.train_s} s`], ["steps", found.steps],
                                    ["trainable parameters", found.trainable_params.toLocaleString()],
                                    ["largest micro-batch that fits", found.max_micro_batch]]) {
        const row = table.insertRow(); row.insertCell().textContent = label; row.insertCell().textContent = value;
      }
      body.append(fits, table);
    } catch (e) {
      if (mine !== asked) return;
      showProblems(e.payload && e.payload.problems);
      body.textContent = "fix the highlighted settings to see an estimate";
    }
  }
  function changed() { clearTimeout(timer); timer = setTimeout(estimate, 600); }
  form.addEventListener("change", event => { if (event.target.classList.contains("variant-choice")) showVariants(); changed(); });
  form.addEventListener("input", changed);
  showVariants();

  document.getElementById("start").addEventListener("click", async event => {
    event.target.disabled = true;
    try { const made = await api("/api/runs", {values: values()}); location.href = made.url; }
    catch (e) { showProblems(e.payload && e.payload.problems ? e.payload.problems : {"": [e.message]}); event.target.disabled = false; }
  });
});
