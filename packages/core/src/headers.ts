/**
 * Request headers as any runtime has them: Node's `IncomingHttpHeaders` (or any plain object),
 * a Fetch `Headers`, or a getter function.
 */
export type HeaderSource =
  | Readonly<Record<string, string | string[] | undefined>>
  | { get(name: string): string | null }
  | ((name: string) => string | string[] | null | undefined);

/**
 * One header's value(s), or `undefined` when absent. `name` must be lowercase.
 * Node's `IncomingHttpHeaders` is read at the lowercase key; in any other plain object other
 * casings are found too, and several casings of one name come back as an array (a duplicate).
 */
export function readHeader(headers: HeaderSource, name: string): string | string[] | undefined {
  if (typeof headers === 'function') return headers(name) ?? undefined;
  const record = headers as Readonly<Record<string, string | string[] | undefined>>;
  // Node's parsed headers (null prototype, names already lowercase) are read directly, first:
  // they are what every Node request has, and a null-prototype object is no Fetch `Headers`.
  if (Object.getPrototypeOf(record) === null) return record[name];
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  // An object written by hand may spell one name in several casings, so every casing is collected.
  let found: string[] | undefined;
  for (const field of Object.keys(record)) {
    const value = record[field];
    if (value !== undefined && field.toLowerCase() === name) (found ??= []).push(...(Array.isArray(value) ? value : [value]));
  }
  return found && found.length === 1 ? found[0] : found;
}
