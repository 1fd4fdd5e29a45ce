import { el } from '../../dom.js';
import scale from '../scale/phone.js';

// A scale whose direction the results name when lower is better.
export default {
  ...scale,
  paint(page, q, r, sum, my) {
    const out = scale.paint(page, q, r, sum, my);
    if (q.scale && q.scale.lower_is_better) out.push(el('p', 'zp-hint', page.T.lowerBetter));
    return out;
  },
};
