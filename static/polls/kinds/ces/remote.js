// A scale's mean and columns.
export { default } from '../scale/remote.js';
