// Bars per option; by segment, a bar per segment in each option's row.
import { options } from '../../stage-kit.js';
import { segmentBars } from '../../stage-segments.js';

export default { ...options, segments: segmentBars };
