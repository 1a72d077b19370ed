// Custom string formats of the manifest schema; the generated validator imports them from here.
export const formats = {
  'date-time': (s: string): boolean => !Number.isNaN(Date.parse(s)),
};
