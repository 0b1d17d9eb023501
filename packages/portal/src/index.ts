export { createPortal } from './portal.js';
export type { GraceOption, PortalHandler, PortalOptions } from './options.js';
