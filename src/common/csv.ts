/**
 * RFC 4180 CSV: comma-separated fields, optional double quotes (a quote inside is doubled), CRLF or LF line ends.
 * Returns the rows as arrays of strings; blank lines are skipped. Throws on an unterminated quote.
 */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const endField = () => {
    row.push(field);
    field = '';
  };
  const endRow = () => {
    endField();
    if (!(row.length === 1 && row[0] === '')) rows.push(row);
    row = [];
  };
  while (i < text.length) {
    const char = text[i];
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (char === '"') quoted = false;
      else field += char;
      i++;
      continue;
    }
    if (char === '"' && field === '') quoted = true;
    else if (char === ',') endField();
    else if (char === '\n') endRow();
    else if (char !== '\r') field += char;
    i++;
  }
  if (quoted) throw new CsvError('unterminated quoted field');
  if (field !== '' || row.length > 0) endRow();
  return rows;
}

export class CsvError extends Error {}

/** One data row: its cells by column name, and how many cells it has beyond the header's columns. */
export interface CsvRecord {
  values: Record<string, string>;
  extraCells: number;
}

/**
 * CSV rows with a header line into records keyed by the header's names. The header must name every `required`
 * column, only `allowed` ones, each once: a file without a header (its first row taken for one) is refused. A row
 * with more cells than the header says so (extraCells), for the caller to refuse: its cells may be shifted.
 */
export function csvRecords(
  text: string,
  columns: { required: readonly string[]; allowed: readonly string[] },
): CsvRecord[] {
  const [header, ...rows] = parseCsv(text.replace(/^\uFEFF/, ''));
  if (!header) throw new CsvError(`no header line: the first line must name the columns (${columns.required.join(',')})`);
  const names = header.map((name) => name.trim());
  const unknown = names.filter((name) => !columns.allowed.includes(name));
  if (unknown.length > 0) {
    throw new CsvError(
      `unknown column ${JSON.stringify(unknown[0].slice(0, 40))} in the header line (columns: ${columns.allowed.join(',')})`,
    );
  }
  const repeated = names.find((name, i) => names.indexOf(name) !== i);
  if (repeated !== undefined) throw new CsvError(`column "${repeated}" appears twice in the header line`);
  const missing = columns.required.filter((name) => !names.includes(name));
  if (missing.length > 0) throw new CsvError(`the header line lacks the column "${missing[0]}"`);
  return rows.map((cells) => {
    const values: Record<string, string> = {};
    names.forEach((name, i) => {
      if (cells[i] !== undefined) values[name] = cells[i];
    });
    return { values, extraCells: Math.max(0, cells.length - names.length) };
  });
}
