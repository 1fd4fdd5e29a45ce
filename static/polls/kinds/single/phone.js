// One option, sent on the tap.
import { options } from '../../phone-kit.js';

export default options;
