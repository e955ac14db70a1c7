package liveops

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"sync"
)

// The login middleware reads a few top-level string members of the login
// payload and adds one member to the login answer. Done with
// map[string]json.RawMessage, that was a reflective decode of the whole
// object (and, for the answer, a decode and a sorted re-encode) on every
// login: about a tenth of a login's CPU. The helpers below split a valid
// object's top level by hand, and give the same results as the map code
// whenever they answer; anything unusual (an escaped or non-ASCII key, a
// duplicate key in the answer, non-ASCII or HTML-special bytes in it)
// takes the map code.

// member is one top-level member of a JSON object: its key as written
// between the quotes (no escapes) and its value's bytes.
type member struct{ key, value []byte }

// splitObject splits b, which json.Valid accepted, into its top-level
// members, appended to dst. ok is false when b is not an object or a key
// holds an escape or a non-ASCII byte.
func splitObject(b []byte, dst []member) (_ []member, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return dst, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return dst, skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return dst, false
		}
		end, esc := stringEnd(b, i)
		if end < 0 || esc {
			return dst, false
		}
		key := b[i+1 : end-1]
		for _, c := range key {
			if c >= 0x80 { // encoding/json replaces invalid UTF-8 in a key
				return dst, false
			}
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return dst, false
		}
		i = skipSpace(b, i+1)
		ve := valueEnd(b, i)
		if ve <= i {
			return dst, false
		}
		dst = append(dst, member{key: key, value: b[i:ve]})
		i = skipSpace(b, ve)
		if i >= len(b) {
			return dst, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return dst, skipSpace(b, i+1) == len(b)
		default:
			return dst, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index after the string starting at b[i] (a quote)
// and whether it holds an escape; -1 when it does not end.
func stringEnd(b []byte, i int) (int, bool) {
	esc := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return j + 1, esc
		}
	}
	return -1, esc
}

// valueEnd returns the index after the value starting at b[i] of a valid
// document; -1 when it does not end.
func valueEnd(b []byte, i int) int {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			e, _ := stringEnd(b, j)
			if e < 0 {
				return -1
			}
			if depth == 0 {
				return e
			}
			j = e - 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return j
			}
			depth--
			if depth == 0 {
				return j + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return j
			}
		}
	}
	if depth == 0 {
		return len(b)
	}
	return -1
}

// plainString returns the string a JSON string literal v stands for when
// it is plain (ASCII, no escapes), as json.Unmarshal would decode it.
func plainString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	for _, c := range v[1 : len(v)-1] {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return "", false
		}
	}
	return string(v[1 : len(v)-1]), true
}

// loginPayload is a login payload's top-level members, read like a
// map[string]json.RawMessage.
type loginPayload struct {
	members []member                   // split by hand, or
	m       map[string]json.RawMessage // decoded by encoding/json
}

// parseLoginPayload reads p as json.Unmarshal into a
// map[string]json.RawMessage would, failing where it fails.
func parseLoginPayload(p []byte, buf []member) (loginPayload, error) {
	if len(p) == 0 {
		return loginPayload{}, nil
	}
	if json.Valid(p) {
		if ms, ok := splitObject(p, buf[:0]); ok {
			return loginPayload{members: ms}, nil
		}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(p, &m); err != nil {
		return loginPayload{}, err
	}
	return loginPayload{m: m}, nil
}

// raw returns name's value (the last of duplicates, as a map keeps), nil
// when absent.
func (l loginPayload) raw(name string) []byte {
	if l.m != nil {
		return l.m[name]
	}
	for i := len(l.members) - 1; i >= 0; i-- {
		if string(l.members[i].key) == name {
			return l.members[i].value
		}
	}
	return nil
}

// str returns name's value when it is a string, else "" (absent, null or
// another type).
func (l loginPayload) str(name string) string {
	v := l.raw(name)
	if s, ok := plainString(v); ok {
		return s
	}
	var s string
	_ = json.Unmarshal(v, &s)
	return s
}

// memberPool recycles the member slices of payload splits.
var memberPool = sync.Pool{New: func() any { s := make([]member, 0, 16); return &s }}

// withMember returns payload, a JSON object (empty: {}), with name: value
// added or replaced, encoded exactly as json.Marshal encodes the
// map[string]json.RawMessage holding the object's members: compact, keys
// sorted. value is json.Marshal's output. ok is false when the fast path
// does not apply (the caller then takes the map code).
func withMember(payload []byte, name string, value []byte) ([]byte, bool) {
	if !plainASCII(value) || !plainASCII([]byte(name)) || strings.ContainsAny(name, `"\`) {
		return nil, false
	}
	var compact []byte
	if len(payload) > 0 {
		if !plainASCII(payload) {
			return nil, false
		}
		var buf bytes.Buffer
		buf.Grow(len(payload))
		if json.Compact(&buf, payload) != nil { // not valid JSON
			return nil, false
		}
		compact = buf.Bytes()
	}
	mp := memberPool.Get().(*[]member)
	defer func() { *mp = (*mp)[:0]; memberPool.Put(mp) }()
	ms := (*mp)[:0]
	if len(compact) > 0 {
		var ok bool
		if ms, ok = splitObject(compact, ms); !ok {
			*mp = ms
			return nil, false
		}
	}
	// The new member replaces one of the same key.
	ms = slices.DeleteFunc(ms, func(m member) bool { return string(m.key) == name })
	ms = append(ms, member{key: []byte(name), value: value})
	*mp = ms
	slices.SortFunc(ms, func(a, b member) int { return bytes.Compare(a.key, b.key) })
	n := 2
	for i, m := range ms {
		if i > 0 && bytes.Equal(ms[i-1].key, m.key) {
			return nil, false // a duplicate key: the map keeps the last one
		}
		n += len(m.key) + 3 + len(m.value) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, '{')
	for i, m := range ms {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, m.key...)
		out = append(out, '"', ':')
		out = append(out, m.value...)
	}
	return append(out, '}'), true
}

// plainASCII reports whether b is ASCII without the bytes json.Marshal
// escapes for HTML (<, >, &) or control bytes outside JSON white space:
// json.Marshal then leaves its strings as they are.
func plainASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 || c == '<' || c == '>' || c == '&' || (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
			return false
		}
	}
	return true
}
