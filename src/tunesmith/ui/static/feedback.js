// The feedback page: a setup form that starts a session, and the labelling view (keys 1, 2, b, s).
// Every value from the server is written with textContent; the choice is sent as "first" / "second"
// (what was on screen) and the server maps it back to the answers it shuffled.
const KEYS = {"1": "first", "2": "second", "b": "both_bad", "s": "skip"};

const REMEMBERED = "tunesmith.feedback.annotator";  // this browser's last annotator name, to fill in

function rememberedName() { try { return localStorage.getItem(REMEMBERED) || ""; } catch (e) { return ""; } }

function setupForm(form) {
  const error = document.getElementById("setup-error");
  form.addEventListener("submit", async event => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form).entries());
    error.hidden = true;
    form.querySelector("button[type=submit]").disabled = true;
    try {
      const made = await api("/api/feedback/sessions", values);
      location.href = made.url;
    } catch (e) {
      error.hidden = false;
      text(error, e.message);
      form.querySelector("button[type=submit]").disabled = false;
    }
  });
}

function labelling(box) {
  const session = box.dataset.session, annotator = box.dataset.annotator;
  const $ = id => document.getElementById(id);
  const first = $("first"), second = $("second"), message = $("message"), note = $("note");
  const buttons = [...box.querySelectorAll("button[data-choice]")];
  try { localStorage.setItem(REMEMBERED, annotator); } catch (e) { /* private mode: nothing to remember */ }
  let current = null, busy = false;

  function fail(error) { message.hidden = false; text(message, error.message || String(error)); }

  function setBusy(on) {
    busy = on;
    box.dataset.ready = on ? "0" : "1";
    buttons.forEach(b => { b.disabled = on; });
  }

  function showStats(state) {
    text($("progress"), `${state.mine} of ${state.total} labelled by you`);
    const a = state.agreement;
    text($("agreement"), a.share === null
      ? "needs two people labelling the same prompts (skips are ignored)"
      : `${Math.round(100 * a.share)}% of annotator pairs gave the same label, over ${a.prompts} prompt(s) ` +
        `labelled by two or more people (skips ignored)`);
    $("agreement").dataset.share = a.share === null ? "" : a.share.toFixed(4);
    $("agreement").dataset.prompts = a.prompts;
    text($("annotators"), "Labels so far: " + (Object.entries(state.annotators)
      .map(([who, count]) => `${who} ${count}`).join(" · ") || "none"));
    box.dataset.mine = state.mine;
  }

  function show(state) {
    showStats(state);
    [first, second].forEach(el => el.classList.remove("picked"));
    if (state.done) {
      current = null;
      $("item").hidden = true;
      $("done").hidden = false;
      text($("done-line"), `All ${state.total} prompts are labelled by you. ` +
        `The preference file is ready for task: dpo and task: reward.`);
      box.dataset.done = "1";
      return;
    }
    current = state.index;
    box.dataset.index = state.index;
    text($("where"), `prompt ${state.index + 1} of ${state.total}`);
    text($("prompt"), state.prompt);
    text(first.querySelector(".answer-text"), state.first);
    text(second.querySelector(".answer-text"), state.second);
    note.hidden = !state.identical;
    text(note, state.identical ? "The two answers are the same (or one is empty): any choice is recorded as a skip." : "");
  }

  async function load() {
    setBusy(true);
    [first, second].forEach(el => text(el.querySelector(".answer-text"), "generating…"));
    const query = new URLSearchParams({session, annotator});
    try {
      const response = await fetch(`/api/feedback/next?${query}`, {headers: {"Accept": "application/json", "X-CSRF-Token": CSRF()}});
      const state = await response.json();
      if (!response.ok) throw new Error(state.error || response.statusText);
      message.hidden = true;
      show(state);
    } catch (e) { fail(e); }
    setBusy(false);
  }

  async function choose(choice) {
    if (busy || current === null) return;
    setBusy(true);
    if (choice === "first") first.classList.add("picked");
    if (choice === "second") second.classList.add("picked");
    try {
      await api("/api/feedback/label", {session, annotator, index: current, choice});
    } catch (e) { fail(e); setBusy(false); return; }
    await load();
  }

  buttons.forEach(b => b.addEventListener("click", () => choose(b.dataset.choice)));
  document.addEventListener("keydown", event => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (event.target.closest && event.target.closest("input, textarea, select")) return;
    const choice = KEYS[event.key.toLowerCase()];
    if (!choice) return;
    event.preventDefault();
    choose(choice);
  });
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("input[name=annotator]").forEach(input => { if (!input.value) input.value = rememberedName(); });
  const form = document.getElementById("setup");
  if (form) setupForm(form);
  const box = document.getElementById("labelling");
  if (box) labelling(box);
});
