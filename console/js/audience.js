// Turning what an operator pastes or uploads into API bodies. Validation stays with the API, which names the field.

// "+1 415 555 2671\n+44 20 7946 0958, +34..." -> ["+1 415 555 2671", "+44 20 7946 0958", "+34..."]
export function parseNumbers(text) {
  return text
    .split(/[\n,;]+/)
    .map((line) => line.trim())
    .filter(Boolean);
}

// "1=Hello\n2={{contact.name}}" -> {"1": "Hello", "2": "{{contact.name}}"}; lines without "=" are reported.
export function parseVariables(text) {
  const variables = {};
  const problems = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (!line) return;
    const cut = line.indexOf("=");
    if (cut < 1) {
      problems.push(`line ${index + 1}: write it as name=value, e.g. 1=Hello`);
      return;
    }
    variables[line.slice(0, cut).trim()] = line.slice(cut + 1).trim();
  });
  return { variables, problems };
}

// RFC 4180 CSV: quoted fields, doubled quotes, commas and newlines inside quotes, CRLF or LF.
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else {
      field += c;
    }
  }
  if (field !== "" || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((cells) => cells.some((cell) => cell.trim() !== ""));
}

const PHONE_HEADERS = ["phonenumber", "phone", "phone_number", "number", "mobile", "msisdn"];

// CSV text -> contact rows for POST /api/whatsapp/contacts, each with `tag` added to its tags.
// Columns: phoneNumber (or phone, number, ...), name, tags ("a;b" or "a b"), timezone; any other column is an
// attribute. Throws an Error with a readable message when the file has no phone column.
export function contactsFromCsv(text, tag) {
  const rows = parseCsv(text.replace(/^\uFEFF/, ""));
  if (rows.length < 2) throw new Error("the file needs a header row and at least one contact");
  const headers = rows[0].map((header) => header.trim());
  const phoneColumn = headers.findIndex((header) => PHONE_HEADERS.includes(header.toLowerCase()));
  if (phoneColumn < 0) throw new Error("the file has no phoneNumber column (the first row must name the columns)");
  return rows.slice(1).map((cells) => {
    const contact = { phoneNumber: (cells[phoneColumn] ?? "").trim(), tags: tag ? [tag] : [] };
    const attributes = {};
    headers.forEach((header, column) => {
      if (column === phoneColumn || !header) return;
      const value = (cells[column] ?? "").trim();
      const key = header.toLowerCase();
      if (key === "name") {
        if (value) contact.name = value;
      } else if (key === "tags") {
        for (const extra of value.split(/[;\s|]+/).filter(Boolean)) if (!contact.tags.includes(extra)) contact.tags.push(extra);
      } else if (key === "timezone") {
        if (value) contact.timezone = value;
      } else if (value !== "") {
        attributes[header] = value;
      }
    });
    if (Object.keys(attributes).length) contact.attributes = attributes;
    return contact;
  });
}

// The contacts API takes at most 1,000 rows a call.
export function chunks(items, size = 1000) {
  const out = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
