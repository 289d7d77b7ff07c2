// An invalid form comes back as 422 with the form re-rendered: swap it in (htmx does not
// swap 4xx answers by default). 204 means "nothing changed" and is left alone.
document.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.xhr.status === 422) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
