// A bar per option.
import { options } from '../../remote-kit.js';

export default options;
