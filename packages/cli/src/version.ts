import pkg from '../package.json' with { type: 'json' };

/** This package's version, for `keyscope --version`. */
export const VERSION: string = pkg.version;
