// The NPS with promoters from 8.
import { npsKind } from '../nps/phone.js';

export default npsKind(8);
