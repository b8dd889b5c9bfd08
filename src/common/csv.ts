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

/** CSV rows with a header line into objects keyed by the header's names. */
export function csvRecords(text: string): Record<string, string>[] {
  const [header, ...rows] = parseCsv(text.replace(/^\uFEFF/, ''));
  if (!header) return [];
  const names = header.map((name) => name.trim());
  return rows.map((cells) => {
    const record: Record<string, string> = {};
    names.forEach((name, i) => {
      if (cells[i] !== undefined) record[name] = cells[i];
    });
    return record;
  });
}
