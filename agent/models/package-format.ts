// The version of the model package layout, in its own module: manifest.ts (at run time) and
// manifest-schema.ts (the schema's `format` literal, TypeBox) both need it, and run-time
// importers must not load TypeBox for a number.
export const PACKAGE_FORMAT = 1;
