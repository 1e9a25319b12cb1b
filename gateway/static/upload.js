// The upload page's progress line. The file is posted straight to the video site by the
// browser (a plain form: it works without this script). The site sends no CORS headers,
// so a script cannot follow the bytes; it shows what is being sent and that it is under
// way, and keeps the button from sending the file twice.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) { return; }
  form.addEventListener("submit", function () {
    var input = document.getElementById("file");
    var file = input && input.files && input.files[0];
    if (!file) { return; }
    var size = file.size >= 1048576 ? (file.size / 1048576).toFixed(1) + " MB"
      : Math.max(1, Math.round(file.size / 1024)) + " KB";
    var text = document.getElementById("progress-text");
    text.textContent = text.getAttribute("data-sending")
      .replace("{name}", file.name).replace("{size}", size);
    document.getElementById("progress").hidden = false;
    document.getElementById("send").disabled = true;
  });
})();
