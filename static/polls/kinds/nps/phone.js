import { el } from '../../dom.js';
import { GROUPS, group, rows, you } from '../../phone-kit.js';
import { buildScale } from '../scale/phone.js';

// 0..10 buttons; the results give the score and the three groups, the attendee's marked.
export function npsKind(promoterFrom) {
  const groupOf = (v) => group(v, promoterFrom);
  return {
    numeric: true,
    group: groupOf,
    build: (page, q, box) => buildScale(page, q, box, false),
    paint(page, q, r, sum, my) {
      const { T, fmt } = page;
      const big = el('p', 'zp-big');
      big.append(el('span', 'zp-k', T[q.kind] + ' '), sum.score == null ? '–' : fmt.number(sum.score, 0, true));
      const g = groupOf(my);
      const shares = GROUPS.map((n) => ({ label: T[n], value: fmt.percent(sum[n] ?? 0), p: (sum[n] || 0) / 100, mine: g === n }));
      const out = [big, rows(shares)];
      if (my != null) out.push(you(page, my));
      return out;
    },
  };
}

export default npsKind(9);
