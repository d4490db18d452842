// The ReDoc page (templates/consult/api_redoc.html), loaded before ReDoc's bundle: the bundle puts
// its vendor's logo from the vendor's host in the side menu, the page's one outside address. That
// image is given no address at all (ReDoc hides an image that fails), so nothing leaves this site.
(function () {
  "use strict";
  function outside(value) {
    var text = String(value);
    return /^(https?:)?\/\//.test(text) && text.indexOf(location.origin + "/") !== 0;
  }
  function refuse(img) {
    setTimeout(function () { img.dispatchEvent(new Event("error")); }, 0);
  }
  var setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (this instanceof HTMLImageElement && String(name).toLowerCase() === "src" && outside(value)) {
      return refuse(this);
    }
    return setAttribute.call(this, name, value);
  };
  var src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    configurable: true,
    enumerable: src.enumerable,
    get: src.get,
    set: function (value) { if (outside(value)) { refuse(this); } else { src.set.call(this, value); } }
  });
})();
