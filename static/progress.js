// Forms that take a while on the server (an upload parsed in the sandbox, then planned with Feast) say so:
// on submit the button is disabled and the form's [data-progress] message shows, with the seconds elapsed.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const note = form.querySelector("[data-progress]");
  if (!note || event.defaultPrevented) return;
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  const started = Date.now();
  const text = note.dataset.progress;
  const tick = () => { note.textContent = `${text} (${Math.round((Date.now() - started) / 1000)} s)`; };
  tick();
  note.hidden = false;
  setInterval(tick, 1000);
});
