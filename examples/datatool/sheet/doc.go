// Package sheet reads the data tool's tables from .xlsx workbooks
// (github.com/xuri/excelize/v2) and CSV files, with their schema written in
// the sheets themselves, and validates them, reporting every problem of a
// run with its file, sheet, cell (A1) and rule.
//
// # Tables
//
// Every sheet of a workbook is a table named by the sheet, except sheets
// whose name starts with '#' (notes for people). A CSV file is one table
// named by the file's base name ("items.csv" is table items). Table and
// column names are a lower-case letter, then lower-case letters, digits
// or '_' (at most MaxNameLen bytes); they become code names (items →
// ItemsRow, item_id → ItemID).
//
// # Header rows
//
// In a table, a row whose first cell starts with '#' is a comment
// anywhere. The first other non-empty row names the columns; the next two
// rows give the columns' types and constraints (either may be empty; in a
// CSV file an empty row needs its commas, or "" for a single column, since
// encoding/csv skips blank lines); every later row is data (empty rows are
// skipped). A column whose name is empty or starts with '#' is a comment
// column:
//
//	item_id          | title    | rarity                 | price             | tags         | # note
//	string           | langkey  | enum(common|rare|epic) | int               | list<string> |
//	key size(1..32)  | required | required               | range(0..1000000) | size(..5)    |
//	# potions first
//	potion           | item.potion | common              | 10                | heal, cheap  | anything
//
// # Types
//
//   - int (32 bits), int64, float (64 bits; NaN and infinities refused)
//   - bool: true, false, 1 or 0 (any case; a workbook's TRUE/FALSE cells)
//   - string: the cell as written (not trimmed); langkey: a string that must
//     be a key of the language table (Options.LangTable, default
//     "strings": a table with a key column and, say, one column per
//     language)
//   - enum(a|b|c): one of the declared names; an empty cell is no value (0)
//   - ref(table): a key of another table (or of the same one); its type is
//     that key's
//   - datetime(zone): zone is an IANA name (Asia/Seoul), UTC, or an offset
//     (+09:00). A cell is "2006-01-02 15:04:05", "2006-01-02 15:04" or
//     "2006-01-02" in that zone, RFC 3339 with its own offset
//     ("2026-12-24T10:00:00+09:00"), or a workbook's date cell (its wall
//     clock, in the zone). Stored to the second with its offset.
//   - list<T> of any type above: a comma-separated cell ("1, 2, 3"); an
//     empty cell is an empty list, an empty element is a problem (a string
//     in a list cannot hold a comma: use a separate table).
//
// An empty cell of a column that is not required is the type's zero value.
//
// # Constraints
//
// Separated by spaces: key (one per table: int, int64 or string; unique
// and required; the lookup key of the generated code), unique, required,
// range(min..max) (numbers; each element of a list; a side may be left
// out: range(0..)), size(min..max) (characters of a string, elements of a
// list), ref(table) (as the ref type, on an int, int64 or string column),
// oneof(a|b|c) (the cell's text is one of these).
//
// # Problems and limits
//
// Read returns a *ValidationError (errors.Is(err, ErrInvalid)) listing
// every problem, each as "file!sheet!B7: rule: message", up to
// Limits.MaxProblems (the rest counted). A cell with a problem does not
// hide the other cells' problems; a column whose header has a problem is
// not read further. Limits (Limits, each with a documented default):
// file size (64 MiB), uncompressed workbook size (512 MiB, against zip
// bombs), rows per table (1,000,000), columns per table (256), cell size
// (32,767 bytes, Excel's own), tables (256); fixed: names (64 bytes), enum
// values (1000), list elements (10,000).
package sheet
