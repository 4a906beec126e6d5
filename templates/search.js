// shorts: narrows the index by track, tag and text, from search.json.
// Without this script (or if the index cannot load) every short stays listed.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var list = document.getElementById("shorts");
  if (!form || !list || !window.fetch || !window.URLSearchParams) return;
  var count = document.getElementById("shorts-count");
  var noMatch = document.getElementById("no-match");
  var query = form.elements.namedItem("q");
  var track = form.elements.namedItem("track");
  var tag = form.elements.namedItem("tag");
  var items = {};
  list.querySelectorAll("[data-slug]").forEach(function (card) {
    items[card.getAttribute("data-slug")] = card.closest("li") || card;
  });

  // Lower case without accents, so "naive" finds "naïve".
  function fold(text) {
    return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  function plural(n) { return n === 1 ? " short" : " shorts"; }

  function apply(index) {
    var words = fold(query.value).split(/\s+/).filter(Boolean);
    var shown = 0;
    index.forEach(function (entry) {
      var visible = (!track.value || entry.track === track.value) &&
        (!tag.value || entry.tags.indexOf(tag.value) !== -1) &&
        words.every(function (word) { return entry.text.indexOf(word) !== -1; });
      var item = items[entry.slug];
      if (item) item.hidden = !visible;
      if (visible && item) shown += 1;
    });
    var total = index.length;
    count.textContent = shown === total ? total + plural(total) : shown + " of " + total + plural(total);
    noMatch.hidden = shown !== 0;
    var params = new URLSearchParams();
    if (query.value.trim()) params.set("q", query.value.trim());
    if (track.value) params.set("track", track.value);
    if (tag.value) params.set("tag", tag.value);
    var search = params.toString();
    history.replaceState(null, "", search ? "?" + search : location.pathname);
  }

  function select(field, value) {
    if (!value) return;
    for (var i = 0; i < field.options.length; i++) {
      if (field.options[i].value === value) { field.value = value; return; }
    }
  }

  fetch(form.getAttribute("data-index"))
    .then(function (response) {
      if (!response.ok) throw new Error("search index: HTTP " + response.status);
      return response.json();
    })
    .then(function (index) {
      index.forEach(function (entry) {
        entry.text = fold([entry.title, entry.summary, entry.track_title]
          .concat(entry.tag_names, entry.tags).join(" "));
      });
      var params = new URLSearchParams(location.search);
      query.value = params.get("q") || "";
      select(track, params.get("track"));
      select(tag, params.get("tag"));
      form.removeAttribute("data-pending");
      form.addEventListener("input", function () { apply(index); });
      form.addEventListener("change", function () { apply(index); });
      form.addEventListener("submit", function (event) { event.preventDefault(); apply(index); });
      form.addEventListener("reset", function () { setTimeout(function () { apply(index); }, 0); });
      document.getElementById("clear-filters").addEventListener("click", function () {
        form.reset();
        query.focus();
      });
      apply(index);
    })
    .catch(function (error) {
      if (window.console) console.warn(error);
    });
})();
