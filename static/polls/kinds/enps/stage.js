// The NPS's gauge and groups.
export { default } from '../nps/stage.js';
