// An invalid form comes back as 422 with the form re-rendered: swap it in (htmx does not
// swap 4xx answers by default). 204 means "nothing changed" and is left alone.
document.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.xhr.status === 422) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// Clicking the recoverable-window timeline of the clone wizard picks that instant (UTC,
// to the second) as a time target, then lets htmx re-render the point step with it.
document.addEventListener("click", (event) => {
  const line = event.target.closest("#pick-timeline");
  if (!line) return;
  const box = line.getBoundingClientRect();
  const start = Number(line.dataset.start), end = Number(line.dataset.end);
  const earliest = Number(line.dataset.earliest), latest = Number(line.dataset.latest);
  let at = Math.round(start + ((event.clientX - box.left) / box.width) * (end - start));
  if (earliest && latest) at = Math.min(Math.max(at, earliest), latest);
  const iso = new Date(at * 1000).toISOString();  // always UTC
  const form = document.getElementById("step-form");
  const time = form.querySelector("input[name=kind][value=time]");
  time.checked = true;
  const set = (name, value) => { const el = form.querySelector(`[name=${name}]`); if (el) el.value = value; };
  set("date", iso.slice(0, 10));
  set("clock", iso.slice(11, 19));
  set("zone", "UTC");
  const params = new URLSearchParams(new FormData(form));
  params.set("kind", "time"); params.set("date", iso.slice(0, 10));
  params.set("clock", iso.slice(11, 19)); params.set("zone", "UTC"); params.set("_preview", "1");
  htmx.ajax("POST", form.getAttribute("hx-post"), {target: "#wizard", swap: "outerHTML",
    values: Object.fromEntries(params)});
});
