// Bars per option.
import { options } from '../../stage-kit.js';

export default options;
