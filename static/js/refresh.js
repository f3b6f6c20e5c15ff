// Running runs, run lists and items refresh themselves: re-fetch the live fragment while
// data-refresh is set and the fragment still marks something running.
(function () {
  const live = document.getElementById("live");
  if (!live || !live.dataset.refresh) return;
  const every = parseInt(live.dataset.refresh, 10) || 3000;
  async function tick() {
    const url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    try {
      const answer = await fetch(url, { credentials: "same-origin" });
      if (answer.ok) {
        live.innerHTML = await answer.text();
        // The fragment says whether there is still something running: stop once not.
        if (!live.querySelector('[data-running="1"], [data-kind="run_state"][data-value="running"]')) return;
      }
    } catch (e) { /* try again next tick */ }
    setTimeout(tick, every);
  }
  setTimeout(tick, every);
})();
