/* Copy buttons: <button data-copy="element-id"> copies that element's text. */
document.addEventListener("click", function (ev) {
  var button = ev.target.closest("[data-copy]");
  if (!button) { return; }
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) { return; }
  navigator.clipboard.writeText(source.textContent).then(function () {
    var label = button.textContent;
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = label; }, 1500);
  }, function () { button.textContent = "Select and copy"; });
});
