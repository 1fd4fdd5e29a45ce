// A scale that says which way is less effort.
import { meanKind } from '../scale/stage.js';

export default meanKind(true);
