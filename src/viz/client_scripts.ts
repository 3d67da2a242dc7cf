/**
 * The browser side of the interactive views, as plain ES2017 source strings inlined into each page.
 * They only wire up markup that the views render in Node (data attributes, an embedded JSON block), so
 * the page needs no library and no network.
 */

/**
 * Attention explorer: every `.hl-attn` element holds `<script type="application/json">` with
 * `{ tokens: string[], heads: { label, pattern: number[][] }[] }` ([head][query_pos][key_pos]).
 * Pick a head in the <select>; hover a token (destination) to shade every source token by the weight
 * it receives, and name the strongest one.
 */
export const ATTENTION_EXPLORER_JS = String.raw`
(function () {
  document.querySelectorAll('.hl-attn').forEach(function (root) {
    var data = JSON.parse(root.querySelector('script[type="application/json"]').textContent);
    var select = root.querySelector('select.hl-head');
    var strip = root.querySelector('.hl-tokens');
    var info = root.querySelector('.hl-info');
    var toks = Array.prototype.slice.call(strip.querySelectorAll('.hl-tok'));
    var focus = -1;
    function paint() {
      var head = data.heads[+select.value];
      toks.forEach(function (el, k) {
        el.classList.toggle('hl-focus', k === focus);
        var w = focus >= 0 && k <= focus ? head.pattern[focus][k] : 0;
        el.style.backgroundColor = focus >= 0 ? 'rgba(33, 102, 172, ' + w.toFixed(3) + ')' : '';
        el.style.color = w > 0.55 ? '#fff' : '';
        el.setAttribute('data-weight', w.toFixed(4));
        el.title = focus >= 0 ? head.label + ': (' + focus + ') → (' + k + ') ' + w.toFixed(3) : '(' + k + ')';
      });
      if (focus < 0) { info.textContent = 'Hover a token to see where ' + head.label + ' looks from it.'; return; }
      var row = head.pattern[focus], best = 0;
      for (var k = 1; k <= focus; k++) if (row[k] > row[best]) best = k;
      info.textContent = head.label + ': (' + focus + ') ' + data.tokens[focus] + ' attends most to (' + best + ') ' +
        data.tokens[best] + ' with weight ' + row[best].toFixed(3);
    }
    toks.forEach(function (el, q) { el.addEventListener('mouseenter', function () { focus = q; paint(); }); });
    strip.addEventListener('mouseleave', function () { focus = -1; paint(); });
    select.addEventListener('change', paint);
    paint();
  });
})();
`;

/**
 * Token lines (bertviz-like): every `.hl-lines` element holds an SVG whose lines carry data-layer,
 * data-head, data-q, data-k and whose token labels carry data-side (dest|src) and data-pos. Pick the
 * layer and the heads; hover a token to keep only the lines that touch it.
 */
export const TOKEN_LINES_JS = String.raw`
(function () {
  document.querySelectorAll('.hl-lines').forEach(function (root) {
    var layerSel = root.querySelector('select.hl-layer');
    var boxes = Array.prototype.slice.call(root.querySelectorAll('input.hl-headbox'));
    var lines = Array.prototype.slice.call(root.querySelectorAll('line[data-q]'));
    var labels = Array.prototype.slice.call(root.querySelectorAll('text[data-side]'));
    var hover = null;
    function paint() {
      var layer = layerSel ? layerSel.value : '0';
      var on = {};
      boxes.forEach(function (b) { on[b.value] = b.checked; });
      lines.forEach(function (el) {
        var d = el.dataset;
        var shown = d.layer === layer && on[d.head] !== false;
        var touches = !hover || (hover.side === 'dest' ? d.q === hover.pos : d.k === hover.pos);
        el.style.display = shown ? '' : 'none';
        el.style.opacity = touches ? '' : '0.04';
      });
      labels.forEach(function (t) {
        var d = t.dataset;
        t.style.fontWeight = hover && d.side === hover.side && d.pos === hover.pos ? 'bold' : '';
      });
    }
    labels.forEach(function (t) {
      t.addEventListener('mouseenter', function () { hover = { side: t.dataset.side, pos: t.dataset.pos }; paint(); });
      t.addEventListener('mouseleave', function () { hover = null; paint(); });
    });
    if (layerSel) layerSel.addEventListener('change', paint);
    boxes.forEach(function (b) { b.addEventListener('change', paint); });
    paint();
  });
})();
`;
