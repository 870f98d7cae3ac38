// Drawing a signature: the only part of the signing page that needs JavaScript. Without it the
// page still signs (the drawing is optional). Strokes become a PNG data URL in a hidden field.
(function () {
  "use strict";
  var box = document.getElementById("draw");
  var canvas = document.getElementById("signature-pad");
  var field = document.getElementById("signature");
  var clear = document.getElementById("clear-signature");
  if (!box || !canvas || !field || !canvas.getContext) return;
  box.hidden = false;
  var ctx = canvas.getContext("2d");
  ctx.lineWidth = 2.5;
  ctx.lineCap = "round";
  ctx.strokeStyle = "#10204a";
  var drawing = false, drawn = false;
  function point(e) {
    var r = canvas.getBoundingClientRect();
    return { x: (e.clientX - r.left) * canvas.width / r.width, y: (e.clientY - r.top) * canvas.height / r.height };
  }
  canvas.addEventListener("pointerdown", function (e) {
    drawing = true; canvas.setPointerCapture(e.pointerId);
    var p = point(e); ctx.beginPath(); ctx.moveTo(p.x, p.y);
  });
  canvas.addEventListener("pointermove", function (e) {
    if (!drawing) return;
    var p = point(e); ctx.lineTo(p.x, p.y); ctx.stroke(); drawn = true;
  });
  function end() {
    if (!drawing) return;
    drawing = false;
    if (drawn) field.value = canvas.toDataURL("image/png");
  }
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  clear.addEventListener("click", function () {
    ctx.clearRect(0, 0, canvas.width, canvas.height); field.value = ""; drawn = false;
  });
})();
