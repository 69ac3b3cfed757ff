// The playground: one streamed request per chosen model, all at once, each into its own column.
document.addEventListener("DOMContentLoaded", () => {
  const send = document.getElementById("send");
  if (!send) return;
  const stop = document.getElementById("stop"), message = document.getElementById("message");
  let controllers = [];

  async function streamInto(column, model, settings, controller) {
    const body = column.querySelector(".text");
    const response = await fetch("/api/playground", {
      method: "POST", signal: controller.signal,
      headers: {"Content-Type": "application/json", "X-CSRF-Token": CSRF()},
      body: JSON.stringify({model, ...settings}),
    });
    if (!response.ok) { const e = await response.json().catch(() => ({error: response.statusText})); throw new Error(e.error); }
    const reader = response.body.getReader(), decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const line = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        if (!line.startsWith("data: ")) continue;
        const event = JSON.parse(line.slice(6));
        if (event.text) body.textContent += event.text;
        if (event.error) throw new Error(event.error);
        if (event.done) column.dataset.done = "true";
      }
    }
  }

  async function ask() {
    const prompt = document.getElementById("prompt").value.trim();
    const models = [...document.querySelectorAll("#models input:checked")].map(box => box.value);
    message.textContent = "";
    if (!prompt || !models.length) { message.textContent = "write a prompt and choose at least one model"; return; }
    const settings = {
      prompt, system: document.getElementById("system").value || null,
      temperature: parseFloat(document.getElementById("temperature").value) || 0,
      top_p: parseFloat(document.getElementById("top_p").value) || 1,
      max_tokens: parseInt(document.getElementById("max_tokens").value) || 96,
      seed: parseInt(document.getElementById("seed").value) || 0,
    };
    const answers = document.getElementById("answers");
    answers.innerHTML = "";
    controllers = models.map(() => new AbortController());
    send.disabled = true; stop.disabled = false;
    await Promise.all(models.map(async (model, i) => {
      const column = document.createElement("div");
      column.className = "answer"; column.dataset.model = model;
      const title = document.createElement("h3");
      title.textContent = document.querySelector(`#models input[value="${CSS.escape(model)}"]`).parentNode.textContent.trim();
      const text = document.createElement("div"); text.className = "text";
      column.append(title, text); answers.appendChild(column);
      try { await streamInto(column, model, settings, controllers[i]); }
      catch (e) { if (e.name !== "AbortError") { text.textContent += `\n[${e.message}]`; column.dataset.done = "error"; } }
    }));
    send.disabled = false; stop.disabled = true;
  }
  send.addEventListener("click", ask);
  document.getElementById("prompt").addEventListener("keydown", event => { if (event.key === "Enter" && event.ctrlKey) ask(); });
  stop.addEventListener("click", () => controllers.forEach(c => c.abort()));
});
