// The NPS's score and groups.
export { default } from '../nps/remote.js';
