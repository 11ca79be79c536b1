// A small RFC 4180 reader for the agents' CSV import: quoted fields may hold commas, doubled
// quotes and line breaks. Rows keep the line they start on, for the import's per-row report.

/** [{line, cells}] of `text`, blank lines left out (a skills cell uses spaces or ';', never a comma). */
export function parseCsv(text) {
  const rows = [];
  let cells = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  const endRow = () => {
    cells.push(cell);
    if (cells.some((c) => c.trim() !== '')) rows.push({ line: start, cells });
    cells = [];
    cell = '';
  };
  const source = text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');  // a BOM (Excel's UTF-8 export) and CRLF
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (quoted) {
      if (c === '"' && source[i + 1] === '"') { cell += '"'; i++; }
      else if (c === '"') quoted = false;
      else { if (c === '\n') line++; cell += c; }
    } else if (c === '"' && cell === '') quoted = true;
    else if (c === ',') { cells.push(cell); cell = ''; }
    else if (c === '\n') { endRow(); line++; start = line; }
    else cell += c;
  }
  endRow();
  return rows;
}
