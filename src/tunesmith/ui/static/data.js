// The Data page: upload (raw body, the name in the query), check, show the report, save a cleaned copy.
document.addEventListener("DOMContentLoaded", () => {
  const say = (id, message, bad) => { const el = document.getElementById(id); el.textContent = message; el.className = "small " + (bad ? "error" : "muted"); };
  let current = null;

  document.getElementById("upload").addEventListener("click", async () => {
    const input = document.getElementById("file");
    if (!input.files.length) { say("upload-message", "choose a file first", true); return; }
    const file = input.files[0];
    try {
      const made = await api(`/api/upload?name=${encodeURIComponent(file.name)}`, file, "PUT");
      say("upload-message", `uploaded as ${made.file} (${made.bytes} bytes); checking…`);
      await check(made.file);
      setTimeout(() => location.reload(), 50);
    } catch (e) { say("upload-message", e.message, true); }
  });

  async function check(file) {
    current = file;
    const result = document.getElementById("result");
    result.hidden = false;
    document.getElementById("result-title").textContent = `checking ${file}…`;
    const found = await api("/api/check", {file});
    sessionStorage.setItem("lastCheck", JSON.stringify(found));
    show(found);
  }

  function show(found) {
    current = found.file;
    document.getElementById("result").hidden = false;
    document.getElementById("result-title").textContent = `${found.file}: ${found.records} records, ${found.findings.length} findings`;
    const list = document.getElementById("findings");
    list.innerHTML = "";
    for (const f of found.findings) {
      const item = document.createElement("li");
      item.textContent = `[${f.severity}] ${f.check}: ${f.message}`;
      list.appendChild(item);
    }
    document.getElementById("report").src = found.report;
  }

  document.querySelectorAll("button.check").forEach(button => button.addEventListener("click", async () => {
    button.disabled = true;
    try { await check(button.closest("tr").dataset.file); } catch (e) { say("fix-message", e.message, true); }
    button.disabled = false;
  }));

  document.getElementById("fix").addEventListener("click", async () => {
    try {
      const fixed = await api("/api/fix", {file: current});
      say("fix-message", `cleaned copy: ${fixed.file} (${fixed.kept} kept, ${fixed.removed} removed; reasons in ${fixed.log})`);
    } catch (e) { say("fix-message", e.message, true); }
  });

  const last = sessionStorage.getItem("lastCheck");
  if (last) { sessionStorage.removeItem("lastCheck"); show(JSON.parse(last)); }
});
