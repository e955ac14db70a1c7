package mysqlpipe

import "strings"

// combinable reports whether query can share a packet with other
// statements: its placeholders, counted as go-sql-driver/mysql's
// interpolation counts them, are exactly nargs, and it ends outside any
// string, quoted name or comment, so that the driver reads the combined
// text's placeholders as each statement's, in order. A backslash inside a
// string makes it false: the driver reads it as an escape or not by the
// session's NO_BACKSLASH_ESCAPES, which this package does not follow.
func combinable(query string, nargs int) bool {
	const (
		normal = iota
		str
		eolComment
		blockComment
		backtick
	)
	state := normal
	var quote byte
	var last byte
	n := 0
	for i := 0; i < len(query); i++ {
		ch := query[i]
		switch state {
		case normal:
			switch ch {
			case '\'', '"':
				state, quote = str, ch
			case '`':
				state = backtick
			case '#':
				state = eolComment
			case '*':
				if last == '/' {
					state = blockComment
				}
			case '-':
				if last == '-' && (i+1 == len(query) || strings.IndexByte(" \t\n\r", query[i+1]) >= 0) {
					state = eolComment
				}
			case '?':
				n++
			}
		case str:
			switch ch {
			case '\\':
				return false
			case quote:
				state = normal
			}
		case eolComment:
			if ch == '\n' {
				state = normal
			}
		case blockComment:
			if ch == '/' && last == '*' {
				state = normal
				last = 0
				continue
			}
		case backtick:
			if ch == '`' {
				state = normal
			}
		}
		last = ch
	}
	return state == normal && n == nargs && strings.TrimSpace(trimStatement(query)) != ""
}

// trimStatement drops the spaces and semicolons query ends with (an empty
// statement between two separators is an error).
func trimStatement(query string) string {
	return strings.TrimRight(query, " \t\r\n;")
}
