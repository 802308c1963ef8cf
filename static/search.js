/* Header search: arrow keys move through the type-ahead suggestions; Escape closes them. */
document.addEventListener("keydown", function (ev) {
  var box = document.getElementById("header-search");
  var list = document.getElementById("suggestions");
  if (!box || !list) { return; }
  var links = Array.prototype.slice.call(list.querySelectorAll("a"));
  var inList = list.contains(document.activeElement);
  if (document.activeElement !== box && !inList) { return; }
  var at = links.indexOf(document.activeElement);
  if (ev.key === "ArrowDown" && links.length) {
    ev.preventDefault();
    links[Math.min(at + 1, links.length - 1)].focus();
  } else if (ev.key === "ArrowUp" && inList) {
    ev.preventDefault();
    if (at <= 0) { box.focus(); } else { links[at - 1].focus(); }
  } else if (ev.key === "Escape") {
    list.innerHTML = "";
    box.focus();
  }
});
